"""Every BioSR structure downstream of the builder: download, evaluate, baselines, learn, demo.

Small hand-made datasets of ER (6 levels), F-actin (12 levels) and nonlinear-SIM
F-actin (GT 3x the WF) stand in for built ones; the demo runs the whole
pipeline on each structure's simulated release.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import biosr.acquire.download as download_module
from biosr import layout
from biosr.cli import main
from biosr.dataset.manifest import card_base, write_card
from biosr.errors import BiosrError, DataError
from biosr.evaluate.baselines import run_baseline
from biosr.evaluate.evaluation import evaluate
from biosr.io.tiff import read_tiff, write_tiff
from conftest import make_dataset
from test_download_http import FAST, serve, url_of

ER, FACTIN, NONLINEAR = (layout.STRUCTURES[n] for n in ("ER", "F-actin", "F-actin_Nonlinear"))


def make_structure_dataset(
    base: Path,
    structure: layout.Structure,
    counts: dict[str, int],
    *,
    size: int = 96,
    gt_scale: int = 1,
    seed: int = 0,
) -> Path:
    """Random float32 pairs of `structure`'s layout in the dataset folder `base`, with a card.

    `counts` maps split to pairs (test: per level, one GT shared by the levels).
    """
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        for lev in layout.split_levels(split, structure=structure):
            for i in range(1, n + 1):
                p = layout.pair(base, split, i, lev, structure=structure)
                p.wf.parent.mkdir(parents=True, exist_ok=True)
                p.gt.parent.mkdir(parents=True, exist_ok=True)
                write_tiff(p.wf, rng.random((size, size), dtype=np.float32))
                if not p.gt.exists():
                    side = size * gt_scale
                    write_tiff(p.gt, rng.random((side, side), dtype=np.float32))
    card = card_base(structure=structure, producer="test fixture", patch_size=size)
    write_card(base, {**card, "gt_scale": gt_scale})
    return base


def _perfect(dataset: Path, out: Path, structure: layout.Structure) -> Path:
    """Predictions that are the GT itself, level folders of `structure`."""
    for p in layout.pairs(dataset, "test", structure=structure):
        target = out / layout.level_dir(p.level, structure=structure) / p.wf.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p.gt, target)
    return out


@pytest.fixture
def er_root(tmp_path: Path) -> Path:
    """A root holding BioSR/ER only (2 test images per level)."""
    make_structure_dataset(tmp_path / "er" / ER.dataset_dir, ER, {"test": 2})
    return tmp_path / "er"


# --------------------------------------------------------------------------- #
# Download: the release archive of any structure, checked against the table's MD5
# --------------------------------------------------------------------------- #


def test_registry_is_the_table_of_structures():
    assert download_module.REGISTRY == {
        s.archive: f"md5:{s.archive_md5}" for s in layout.STRUCTURES.values()
    }
    assert download_module.REGISTRY["ER.zip"] == "md5:2bd05c7dba69a10b36a141407927d585"


def _figshare(monkeypatch, srv, files: dict[str, str | None]) -> list[str]:
    """Fake figshare whose record lists `files` (name to MD5; None: no MD5), served by `srv`.

    Returns the list of the file names asked for (filled as they are).
    """
    asked: list[str] = []

    class Repo:
        api_response = tuple(
            {"name": name, **({"computed_md5": md5} if md5 else {})} for name, md5 in files.items()
        )

        def download_url(self, name: str) -> str:
            if name not in files:
                raise ValueError(f"File '{name}' not found in data archive")
            asked.append(name)
            return url_of(srv, name)

    monkeypatch.setattr("pooch.downloaders.doi_to_repository", lambda doi: Repo())
    return asked


def test_figshare_fetches_the_structures_archive_by_name(tmp_path, monkeypatch, capsys):
    payload = b"PK\x03\x04 pretend ER release"
    md5 = hashlib.md5(payload).hexdigest()
    with serve(payload) as srv:
        asked = _figshare(monkeypatch, srv, {"Microtubules.zip": "0" * 32, "ER.zip": md5})
        code = main(
            ["download", str(tmp_path), "--source", "figshare", "--structure", "ER", "--retries=0"]
        )
        requests = len(srv.requests)
    out = capsys.readouterr().out
    assert code == 0, out
    assert asked == ["ER.zip"] and requests == 1
    assert (tmp_path / "ER.zip").read_bytes() == payload
    assert not (tmp_path / "Microtubules.zip").exists()
    assert f"md5:{md5}" in out
    assert f"next: biosr build --source {tmp_path / 'ER.zip'} --structure ER --out OUT" in out


def test_figshare_md5_mismatch_against_the_table_is_one_line(tmp_path, monkeypatch, capsys):
    """Without figshare's MD5 the table's is used; bytes that differ are refused and deleted."""
    with serve(b"PK\x03\x04 not the real archive") as srv:
        _figshare(monkeypatch, srv, {"F-actin_Nonlinear.zip": None})
        argv = ["download", str(tmp_path / "r"), "--source", "figshare", "--retries", "0"]
        code = main([*argv, "--structure", "F-actin_Nonlinear"])
    err = capsys.readouterr().err.rsplit("\r", 1)[-1]  # after the progress bar
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("biosr: error: ") and "Traceback" not in err
    assert "F-actin_Nonlinear.zip: checksum mismatch" in err
    assert f"expected {NONLINEAR.archive_md5}" in err and "deleted for safety" in err
    assert list((tmp_path / "r").iterdir()) == []


def test_figshare_fetch_api_for_a_structure(tmp_path, monkeypatch):
    payload = b"PK\x03\x04 CCPs"
    md5 = hashlib.md5(payload).hexdigest()
    with serve(payload) as srv:
        _figshare(monkeypatch, srv, {"CCPs.zip": md5})
        got = download_module.fetch(tmp_path, source="figshare", structure="ccps", **FAST)
    assert got.path == tmp_path / "CCPs.zip" and got.revision == f"md5:{md5}"


def test_git_holds_microtubules_only(tmp_path):
    with pytest.raises(BiosrError, match=r"Microtubules only.*--source figshare --structure ER"):
        download_module.fetch(tmp_path, source="git", structure="ER")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="unknown structure 'Actin'"):
        download_module.fetch(tmp_path, source="figshare", structure="Actin")


def test_mirror_archive_of_a_structure_lands_in_its_folder(tmp_path):
    src = make_structure_dataset(tmp_path / "src" / "ER", ER, {"training": 1, "test": 1})
    archive = tmp_path / "er_mirror.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, f"mirror-main/BioSR/ER/{path.relative_to(src).as_posix()}")
    got = download_module.fetch(
        tmp_path / "root", source=str(archive), splits=["test"], structure="ER"
    )
    assert got.path == tmp_path / "root" / ER.dataset_dir
    assert sorted(p.name for p in (got.path / "test_wf").iterdir()) == [
        f"level_{lv:02d}" for lv in ER.levels
    ]
    assert got.report.ok, got.report.findings


# --------------------------------------------------------------------------- #
# Evaluate and report: the structure's levels, photons, pixel size; outputs name it
# --------------------------------------------------------------------------- #


def test_evaluate_an_er_dataset_by_its_levels_and_photons(er_root, tmp_path):
    base = er_root / ER.dataset_dir
    preds = _perfect(base, tmp_path / "perfect", ER)
    (preds / "level_07").mkdir()  # a Microtubules level, not one of ER's
    res = evaluate(er_root, {"perfect": preds}, tmp_path / "report", plots=False)
    assert res.structure == "ER" and res.levels == [1, 2, 3, 4, 5, 6]
    assert res.findings == [
        (str(preds / "level_07"), "extra: not a level_01..level_06 folder of test_wf")
    ]
    # one GT per level (test_gt/level_XX): each level is scored against its own
    assert (base / "test_gt" / "level_06" / "002.tif").is_file()
    assert all(res.summary["perfect"][lev]["nrmse"]["mean"] == 0.0 for lev in ER.levels)
    assert res.protocol["pixel_size_nm"] == pytest.approx(layout.PIXEL_SIZE_WF_NM)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["structure"] == "ER"
    assert list(summary["levels"]) == ["1", "2", "3", "4", "5", "6"]
    assert summary["levels"]["6"]["photons"] == pytest.approx(600.0)
    assert summary["levels"]["2"]["photons"] == pytest.approx(ER.photons[2])
    assert ER.photons[2] != layout.PHOTONS[2]  # a 6-step ladder, not Microtubules' 9
    rows = list(csv.DictReader(open(tmp_path / "report" / "per_image.csv")))
    assert len(rows) == 12 and {r["structure"] for r in rows} == {"ER"}
    assert {r["photons"] for r in rows if r["level"] == "2"} == {f"{ER.photons[2]:.1f}"}
    md = (tmp_path / "report" / "summary.md").read_text()
    assert md.startswith("Structure **ER**.") and "L6 (600 ph)" in md and "L7" not in md


def test_structure_selects_among_several_and_levels_are_checked(tmp_path):
    root = tmp_path / "root"
    make_dataset(root, {"test": 1})  # Microtubules, 9 levels, 128 px
    make_structure_dataset(root / FACTIN.dataset_dir, FACTIN, {"test": 1})
    mt = _perfect(root / layout.DATASET_DIR, tmp_path / "mt", layout.MICROTUBULES)
    fa = _perfect(root / FACTIN.dataset_dir, tmp_path / "fa", FACTIN)
    assert evaluate(root, {"mt": mt}, None).levels == list(layout.LEVELS)  # the default
    res = evaluate(root, {"fa": fa}, None, structure="F-actin", levels=[10, 12])
    assert res.structure == "F-actin" and res.levels == [10, 12] and res.ok
    with pytest.raises(DataError, match=r"Microtubules: unknown level 10 for Microtubules; valid"):
        evaluate(root, {"mt": mt}, None, levels=[10])
    with pytest.raises(DataError, match="unknown structure 'Actin'"):
        evaluate(root, {"fa": fa}, None, structure="Actin")
    with pytest.raises(DataError, match=r"no BioSR dataset here.*ER"):
        evaluate(root, {"fa": fa}, None, structure="ER")


def test_card_names_the_structure_of_an_unnamed_folder(tmp_path):
    base = make_structure_dataset(tmp_path / "my_copy", ER, {"test": 1})
    res = evaluate(base, {"p": _perfect(base, tmp_path / "p", ER)}, None)
    assert res.structure == "ER" and res.levels == list(ER.levels)


def test_nonlinear_gt_at_3x_scores_on_its_grid(tmp_path):
    base = make_structure_dataset(
        tmp_path / "nl" / NONLINEAR.dataset_dir, NONLINEAR, {"test": 1}, size=32, gt_scale=3
    )
    wf_out = run_baseline("wf", tmp_path / "nl", tmp_path / "wf", levels=[1, 9], workers=1)
    pred = read_tiff(wf_out / "level_09" / "001.tif")
    wf = read_tiff(base / "test_wf" / "level_09" / "001.tif")
    np.testing.assert_array_equal(pred, np.kron(wf, np.ones((3, 3), np.float32)))
    info = json.loads((wf_out / "baseline.json").read_text())
    assert info["structure"] == "F-actin_Nonlinear"
    assert info["pixel_size_nm"] == pytest.approx(60.4 / 3)
    res = evaluate(tmp_path / "nl", {"wf": wf_out}, None, levels=[1, 9])
    assert res.protocol["pixel_size_nm"] == pytest.approx(60.4 / 3) and res.ok
    assert res.summary["wf"][9]["psnr"]["mean"] is not None


def test_baselines_write_the_structures_levels(er_root, tmp_path):
    out = run_baseline("rl", er_root, tmp_path / "rl", iterations=2, workers=1)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        f"level_{lv:02d}" for lv in ER.levels
    ]
    assert json.loads((out / "baseline.json").read_text())["structure"] == "ER"
    with pytest.raises(DataError, match=r"unknown level 7 for ER; valid levels: 1\.\.6"):
        run_baseline("wf", er_root, tmp_path / "wf", levels=[7])
    assert not (tmp_path / "wf").exists()


def test_sim_baseline_refuses_nonlinear_stacks_in_one_line(tmp_path):
    make_structure_dataset(tmp_path / "nl" / NONLINEAR.dataset_dir, NONLINEAR, {"test": 1}, size=8)
    with pytest.raises(DataError, match=r"linear SIM of 9-frame stacks; F-actin_Nonlinear has 25"):
        run_baseline("sim", tmp_path / "nl", tmp_path / "sim", release=tmp_path)
    assert not (tmp_path / "sim").exists()


def test_sim_baseline_of_an_er_release_has_its_six_levels(tmp_path):
    from biosr.build.builder import build
    from biosr.simulate.release import simulate_release

    release = simulate_release(
        tmp_path / "rel", cells=3, size=160, seed=0, workers=1, structure="ER"
    )
    cut = {"training_cells": "1", "validate_cells": "2", "test_cells": "3", "test_crops": 1}
    build(release, tmp_path / "data", preset="small", structure="ER", patch_size=96, **cut)
    sim = run_baseline("sim", tmp_path / "data", tmp_path / "sim", release=release, levels=[1, 6])
    assert sorted(p.name for p in sim.iterdir() if p.is_dir()) == ["level_01", "level_06"]
    assert json.loads((sim / "baseline.json").read_text())["structure"] == "ER"
    wf = run_baseline("wf", tmp_path / "data", tmp_path / "wf", levels=[1, 6])
    res = evaluate(tmp_path / "data", {"sim": sim, "wf": wf}, None, levels=[6], plots=False)
    assert res.ok and res.structure == "ER" and res.levels == [6]
    sim_nm, wf_nm = (res.summary[m][6]["resolution_nm"]["mean"] for m in ("sim", "wf"))
    assert sim_nm < 0.75 * wf_nm, (sim_nm, wf_nm)  # SIM resolves finer, on the right crops
    for p in layout.pairs(tmp_path / "data", "test", 6, structure="ER"):
        gt = read_tiff(p.gt).ravel()
        r_sim, r_wf = (
            np.corrcoef(gt, read_tiff(folder / "level_06" / p.wf.name).ravel())[0, 1]
            for folder in (sim, wf)
        )
        assert r_sim > max(r_wf, 0.9), (p.index, r_sim, r_wf)


def test_html_report_names_the_structure_and_montages_its_levels(er_root, tmp_path):
    pytest.importorskip("matplotlib")
    assert layout.sample_levels(ER.levels) == (1, 3, 6)
    assert layout.sample_levels(FACTIN.levels) == (1, 6, 12)
    assert layout.sample_levels(layout.LEVELS) == (1, 5, 9)  # Microtubules' montage unchanged
    preds = _perfect(er_root / ER.dataset_dir, tmp_path / "perfect", ER)
    res = evaluate(er_root, {"perfect": preds}, tmp_path / "report")
    page = res.files["html"].read_text()
    assert "test level(s) of BioSR ER, protocol dlsr" in page
    assert "<dt>structure</dt><dd>ER</dd>" in page  # the card's provenance
    assert "L6 (600 ph)" in page and res.files["montage"].stat().st_size > 1000


def test_cli_evaluate_baseline_pack_take_structure(tmp_path, capsys):
    root = tmp_path / "root"
    make_dataset(root, {"training": 1, "validate": 1, "test": 1})
    make_structure_dataset(root / ER.dataset_dir, ER, {"training": 1, "validate": 1, "test": 1})
    wf = tmp_path / "wf"
    assert main(["baseline", "wf", "--data", str(root), "--out", str(wf), "--structure", "ER"]) == 0
    assert sorted(p.name for p in wf.iterdir() if p.is_dir())[-1] == "level_06"
    rep = tmp_path / "rep"
    argv = ["evaluate", "--data", str(root), "--predictions", str(wf), "--out", str(rep)]
    assert main([*argv, "--no-plots", "--structure", "ER"]) == 0
    assert "Structure **ER**" in capsys.readouterr().out
    assert main(["pack", str(root), "--structure", "ER"]) == 0
    assert "test_wf_level_06" in capsys.readouterr().out
    assert not (root / layout.DATASET_DIR / layout.PACK_DIR).exists()
    # A level of another structure: one line, exit 1, nothing written.
    mt = root / layout.DATASET_DIR
    for cmd in (
        ["baseline", "wf", "--data", str(root), "--out", str(tmp_path / "x"), "--levels", "10"],
        [*argv[:-1], str(tmp_path / "y"), "--levels", "10"],
        ["pack", str(root), "--level", "10"],
        ["pack", str(root), "--level", "7", "--structure", "ER"],
    ):
        before = sorted(p for p in tmp_path.rglob("*"))
        assert main(cmd) == 1, cmd
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "unknown level" in err and "valid levels" in err, err
        assert sorted(p for p in tmp_path.rglob("*")) == before, cmd
    assert not (mt / layout.PACK_DIR).exists()


# --------------------------------------------------------------------------- #
# Learn: any structure's dataset, the model's scale from the data, the checkpoint's record
# --------------------------------------------------------------------------- #


def test_loader_reads_a_twelve_level_dataset_files_and_packed(tmp_path):
    pytest.importorskip("torch")
    from biosr.dataset.pack import pack
    from biosr.learn.data import BioSR, load_arrays

    root = tmp_path / "root"
    make_dataset(root, {"test": 1}, size=16)
    make_structure_dataset(root / FACTIN.dataset_dir, FACTIN, {"test": 2}, size=16)
    ds = BioSR(root, "test", structure="F-actin", cache="files")
    assert ds.structure is FACTIN and len(ds) == 24 and not ds.packed
    assert ds.pairs[-1].wf.parent.name == "level_12"
    item = ds[23]
    assert item.level == 12 and item.index == 2
    np.testing.assert_array_equal(item.wf[0].numpy(), read_tiff(ds.pairs[-1].wf))
    assert len(BioSR(root, "test", cache="files")) == 9  # the default: Microtubules
    with pytest.raises(DataError, match=r"unknown level 13 for F-actin; valid levels: 1\.\.12"):
        BioSR(root, "test", level=13, structure="F-actin")
    with pytest.raises(DataError, match="unknown level 10 for Microtubules"):
        BioSR(root, "test", level=10)
    pack(root, structure="F-actin")
    packed = BioSR(root, "test", level=[10, 12], structure="F-actin")
    assert packed.packed and len(packed) == 4
    np.testing.assert_array_equal(packed[3].gt.numpy(), item.gt.numpy())
    wf, gt = load_arrays(root, "test", structure="F-actin")
    assert wf.shape == (24, 16, 16) and gt.shape == (24, 16, 16)


def test_loader_reads_the_per_level_gt_of_er_files_and_packed(er_root):
    pytest.importorskip("torch")
    from biosr.dataset.pack import pack, status
    from biosr.learn.data import BioSR, load_arrays

    base = er_root / ER.dataset_dir
    files = BioSR(er_root, "test", cache="files")
    assert files.structure is ER and len(files) == 12
    pack(er_root)
    assert [g for g in status(er_root) if g.startswith("test_gt")] == [
        f"test_gt_level_{lv:02d}" for lv in ER.levels
    ]
    packed = BioSR(er_root, "test", cache="auto")
    assert packed.packed
    wf, gt = load_arrays(er_root, "test")
    for j, p in enumerate(layout.pairs(base, "test")):
        want = read_tiff(p.gt)
        assert p.gt.parent.name == f"level_{p.level:02d}"
        np.testing.assert_array_equal(files[j].gt[0].numpy(), want)
        np.testing.assert_array_equal(packed[j].gt[0].numpy(), want)
        np.testing.assert_array_equal(gt[j], want)
        np.testing.assert_array_equal(wf[j], read_tiff(p.wf))
    assert not np.array_equal(gt[0], gt[2])  # levels 1 and 2 of image 1: two GTs


def _learnable(base: Path, structure: layout.Structure, scale: int, size: int = 16) -> Path:
    """A few blurred-GT pairs (the GT `scale` x the WF) with a card naming `structure`."""
    from scipy import ndimage

    rng = np.random.default_rng(1)
    for split, n in {"training": 4, "validate": 1, "test": 1}.items():
        for lev in layout.split_levels(split, structure=structure):
            for i in range(1, n + 1):
                p = layout.pair(base, split, i, lev, structure=structure)
                p.wf.parent.mkdir(parents=True, exist_ok=True)
                p.gt.parent.mkdir(parents=True, exist_ok=True)
                gt = ndimage.gaussian_filter(rng.random((size * scale,) * 2), 1.0)
                write_tiff(p.wf, gt[::scale, ::scale].astype(np.float32))
                write_tiff(p.gt, gt.astype(np.float32))
    write_card(base, card_base(structure=structure, producer="test fixture", gt_scale=scale))
    return base


def test_train_selects_the_structure_and_takes_its_3x_scale(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from biosr.learn.predict import predict

    root = tmp_path / "root"
    _learnable(root / layout.DATASET_DIR, layout.MICROTUBULES, 1)
    _learnable(root / NONLINEAR.dataset_dir, NONLINEAR, 3)
    argv = ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--model", "unet"]
    argv += ["--steps", "2", "--batch-size", "2", "--accelerator", "cpu"]
    assert main([*argv, "--structure", "F-actin_Nonlinear"]) == 0, capsys.readouterr().err
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["scale"] == 3
    assert ckpt["hyper_parameters"]["structure"] == "F-actin_Nonlinear"
    recipe = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert recipe["run"]["structure"] == "F-actin_Nonlinear"
    out = predict(
        tmp_path / "run" / "checkpoints" / "last.ckpt",
        root / NONLINEAR.dataset_dir,
        tmp_path / "pred",
        device="cpu",
    )
    assert read_tiff(out / "level_09" / "001.tif").shape == (48, 48)
    # The default structure of the same root: Microtubules, same-size GT.
    argv[argv.index("--out") + 1] = str(tmp_path / "mt")
    assert main(argv) == 0
    ckpt = torch.load(tmp_path / "mt" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["scale"] == 1
    assert ckpt["hyper_parameters"]["structure"] == "Microtubules"


# --------------------------------------------------------------------------- #
# Demo: simulate, build, train, predict, baselines, evaluate, report, for every structure
# --------------------------------------------------------------------------- #


@pytest.mark.slow
@pytest.mark.parametrize("name", list(layout.STRUCTURES))
def test_demo_tiny_runs_for_every_structure(name, tmp_path):
    from biosr.demo import METHODS, run_demo

    chosen = layout.STRUCTURES[name]
    stages: list[str] = []
    result = run_demo(
        tmp_path, config="tiny", seed=2, workers=2, structure=name, on_stage=stages.append
    )
    assert result.structure == name and len(stages) == 6
    assert f"simulating a raw {name} release" in stages[0]
    assert result.dataset == tmp_path / "data" / chosen.dataset_dir
    assert layout.structure_of(result.dataset) is chosen
    n_test = len(layout.pairs(result.dataset, "test", 1))
    for method in METHODS:
        files = list((tmp_path / "predictions" / method).rglob("*.tif"))
        assert len(files) == len(chosen.levels) * n_test, method
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["structure"] == name and summary["complete"]
    assert [int(lv) for lv in summary["levels"]] == list(chosen.levels)
    assert len(result.table.splitlines()[2:]) == len(chosen.levels)
    assert f"BioSR {name}" in result.report.read_text()
    wf = read_tiff(layout.pairs(result.dataset, "test", 1)[0].wf)
    gt = read_tiff(layout.pairs(result.dataset, "test", 1)[0].gt)
    card = json.loads((result.dataset / layout.CARD_FILE).read_text())
    assert gt.shape[0] == wf.shape[0] * card["gt_scale"]


def test_predict_plans_the_chosen_structures_inputs_under_a_shared_root(tmp_path):
    from biosr.learn.predict import plan_inputs

    root = tmp_path / "root"
    make_structure_dataset(root / layout.DATASET_DIR, layout.MICROTUBULES, {"test": 1}, size=32)
    make_structure_dataset(root / ER.dataset_dir, ER, {"test": 1}, size=32)
    assert len(plan_inputs(root)) == 9  # the default, Microtubules
    planned = plan_inputs(root, structure="ER")
    assert [rel.parent.name for _, rel in planned] == [f"level_{lv:02d}" for lv in ER.levels]
    # An ER model given a Microtubules folder itself predicts that folder's own nine levels.
    assert len(plan_inputs(root / layout.DATASET_DIR, structure="ER")) == 9


def test_a_prediction_folder_of_high_f_actin_levels_is_not_overwritten(tmp_path):
    from biosr.errors import BiosrError
    from biosr.evaluate.prediction_folder import check_folder

    out = tmp_path / "pred"
    (out / "level_12").mkdir(parents=True)
    with pytest.raises(BiosrError, match="already holds predictions"):
        check_folder(out, overwrite=False, force=False)


def test_train_refuses_a_structure_hidden_in_data_options(tmp_path):
    from biosr.errors import BiosrError
    from biosr.learn.train import train

    data = make_structure_dataset(tmp_path / "d" / ER.dataset_dir, ER, {"training": 1}, size=32)
    with pytest.raises(BiosrError, match=r"train\(structure=\.\.\.\)"):
        train(data, tmp_path / "run", model="unet", data_options={"structure": "CCPs"})
    assert not (tmp_path / "run").exists()
