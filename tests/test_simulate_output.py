"""The simulator's outputs: release MRC files, the published layout, determinism, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from biosr import layout
from biosr.cli import main
from biosr.dataset import verify
from biosr.dataset.manifest import read_card, read_manifest
from biosr.errors import BiosrError
from biosr.io.mrc import read_header, read_mrc
from biosr.io.owner import MARKER, owner
from biosr.io.tiff import read_tiff
from biosr.simulate import PRESETS, simulate_patches, simulate_release
from conftest import tree_digest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    simulate_patches(root, preset="tiny", seed=0, workers=1)
    return root


def test_published_preset_has_exact_published_counts():
    assert PRESETS["published"].counts() == layout.PUBLISHED_COUNTS
    assert PRESETS["tiny"].counts() == {"training": 36, "validate": 36, "test": 2}


def test_tiny_patches_layout_values_and_card(tiny):
    base = layout.dataset_dir(tiny)
    pairs = layout.pairs(base, "training")
    assert len(pairs) == 36
    wf, gt = read_tiff(pairs[0].wf, shape=(128, 128)), read_tiff(pairs[0].gt, shape=(128, 128))
    for image in (wf, gt):
        assert image.min() == 0.0 and image.max() == 1.0
    assert len(layout.pairs(base, "test")) == 2 * 9
    card = read_card(base)
    assert card["gt_scale"] == 1 and card["seed"] == 0 and card["preset"] == "tiny"
    assert card["physics"]["na"] == layout.NA
    assert card["pixel_size_gt_nm"] == layout.PIXEL_SIZE_WF_NM  # the builder's key
    assert card["physics"]["photons_per_level"]["9"] == pytest.approx(600.0)
    rows = read_manifest(base)
    assert len(rows) == 36 * 2 + 36 * 2 + 2 * 9 + 2
    # Training mixes the 9 levels; each level appears 4 flips x 1 crop times.
    levels = Counter(r["photon_level"] for r in rows.values() if r["split"] == "training")
    assert levels == {str(v): 2 * layout.FLIPS for v in layout.LEVELS}  # wf + gt rows


def test_verify_passes_on_tiny(tiny):
    report = verify.verify(tiny, deep=True)
    assert report.ok, report.findings
    assert report.hashed == 36 * 2 + 36 * 2 + 2 * 9 + 2


def test_test_split_wf_at_every_level_shows_the_same_field(tiny):
    base = layout.dataset_dir(tiny)
    gt = read_tiff(layout.pair(base, "test", 1, 1).gt)
    low = read_tiff(layout.pair(base, "test", 1, 1).wf)
    high = read_tiff(layout.pair(base, "test", 1, 9).wf)
    other = read_tiff(layout.pair(base, "test", 2, 9).wf)
    same = np.corrcoef(high.ravel(), gt.ravel())[0, 1]
    assert same > 0.6
    assert np.corrcoef(high.ravel(), low.ravel())[0, 1] > 0.5
    # Higher level = less noise: correlation with the GT grows with photons.
    assert same > np.corrcoef(low.ravel(), gt.ravel())[0, 1]
    assert np.corrcoef(high.ravel(), other.ravel())[0, 1] < same


def test_patches_deterministic_for_any_worker_count(tiny, tmp_path):
    simulate_patches(tmp_path / "a", preset="tiny", seed=0, workers=2)
    a = tree_digest(layout.dataset_dir(tmp_path / "a"))
    assert a == tree_digest(layout.dataset_dir(tiny))
    simulate_patches(tmp_path / "b", preset="tiny", seed=1, workers=1)
    b = tree_digest(layout.dataset_dir(tmp_path / "b"))
    assert a.keys() == b.keys() and a["test_gt/001.tif"] != b["test_gt/001.tif"]


def test_gt_scale_two_gives_256_gt(tmp_path):
    base = simulate_patches(tmp_path, preset="tiny", gt_scale=2, workers=1)
    assert read_tiff(layout.pair(base, "validate", 1).gt).shape == (256, 256)
    assert read_card(base)["gt_scale"] == 2
    assert verify.verify(tmp_path, deep=True).ok


def test_refuses_non_empty_then_overwrites_without_stale_files(tiny, tmp_path):
    with pytest.raises(BiosrError, match="not empty"):
        simulate_patches(tiny, preset="tiny", workers=1)
    root = tmp_path / "r"
    base = simulate_patches(root, preset="tiny", workers=1)
    stale = layout.pair(base, "training", 999)
    stale.wf.write_bytes(b"stale")
    simulate_patches(root, preset="tiny", workers=1, overwrite=True)
    assert not stale.wf.exists()
    assert tree_digest(base) == tree_digest(layout.dataset_dir(tiny))


def test_interrupted_run_leaves_no_partial_file_and_reruns(tmp_path, monkeypatch):
    """A write interrupted half-way (bytes already on disk) leaves neither a truncated file
    under its final name nor a temporary .part file."""
    import tifffile

    calls = {"n": 0}
    real = tifffile.imwrite

    def failing(path, image, **kw):
        calls["n"] += 1
        if calls["n"] == 30:
            Path(path).write_bytes(b"II*\x00 half a TIFF")
            raise KeyboardInterrupt
        return real(path, image, **kw)

    monkeypatch.setattr(tifffile, "imwrite", failing)
    with pytest.raises(KeyboardInterrupt):
        simulate_patches(tmp_path, preset="tiny", workers=1)
    base = layout.dataset_dir(tmp_path)
    assert owner(base) == "simulate"  # claimed first, so --overwrite may replace it
    files = [p for p in base.rglob("*") if p.is_file() and p.name != MARKER]
    assert len(files) == 29 and not (base / layout.MANIFEST_FILE).exists()
    assert not [p for p in base.rglob("*") if p.name.endswith(".part")]
    for p in files:
        read_tiff(p, shape=(128, 128))  # every file under a final name is complete
    monkeypatch.setattr(tifffile, "imwrite", real)
    simulate_patches(tmp_path, preset="tiny", workers=1, overwrite=True)
    assert len(read_manifest(base)) == 36 * 4 + 20


def test_release_files_in_biosr_mrc_dialect(tmp_path):
    folder = simulate_release(tmp_path, cells=2, size=32, seed=0, workers=1)
    assert folder == tmp_path / "Microtubules"
    files = layout.release_files(folder, 2)
    for lv in layout.LEVELS:
        header = read_header(files[f"level_{lv:02d}"])
        assert int(header.mode) == 6 and header.map == b""  # no MAP id, as BioSR
        stack = read_mrc(files[f"level_{lv:02d}"])
        assert stack.data.shape == (9, 32, 32) and stack.data.dtype == np.uint16
        assert stack.voxel_size_nm == pytest.approx(layout.PIXEL_SIZE_WF_NM)
    sim = read_mrc(files["sim_gt"], modes=(2,))
    assert sim.data.shape == (1, 64, 64) and sim.voxel_size_nm == pytest.approx(31.3)
    raw_gt = read_mrc(files["raw_gt"]).data.astype(float)
    low = read_mrc(files["level_01"]).data.astype(float)
    assert raw_gt.mean() > low.mean() > layout.CAMERA_OFFSET - 5
    card = json.loads((folder / layout.CARD_FILE).read_text())
    assert card["cells"] == 2 and card["raw_size"] == 32 and card["seed"] == 0


def test_release_deterministic_for_any_worker_count(tmp_path):
    one = simulate_release(tmp_path / "a", cells=2, size=32, seed=3, workers=1)
    two = simulate_release(tmp_path / "b", cells=2, size=32, seed=3, workers=2)
    assert tree_digest(one) == tree_digest(two)


def test_cli_simulate_patches_preview_and_errors(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "cli"
    assert main(["simulate", "--out", str(out), "--workers", "1", "--preview"]) == 0
    png = out / "simulate_preview.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "simulated:" in capsys.readouterr().out
    assert main(["simulate", "--out", str(out), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("biosr: error: ") and "not empty" in err and err.count("\n") == 1
    code = main(["simulate", "--out", str(tmp_path / "r"), "--format", "raw", "--cells", "1000"])
    assert code == 1 and "cells must be" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # not a positive count: argparse refuses it
        main(["simulate", "--out", str(tmp_path / "r"), "--format", "raw", "--cells", "0"])
    assert usage.value.code == 2 and "--cells: must be at least 1" in capsys.readouterr().err


def test_bad_arguments_raise_biosr_error(tmp_path):
    """Bad arguments are a BiosrError naming the folder (the CLI no longer turns every
    ValueError, bugs included, into a one-line message)."""
    with pytest.raises(BiosrError, match=r"Microtubules: cells must be 1\.\.999"):
        simulate_release(tmp_path, cells=0)
    with pytest.raises(BiosrError, match="size must be an even number"):
        simulate_release(tmp_path, cells=1, size=15)
    with pytest.raises(BiosrError, match="Microtubules: unknown preset 'huge'"):
        simulate_patches(tmp_path, preset="huge")
    with pytest.raises(BiosrError, match="gt_scale must be 1 or 2"):
        simulate_patches(tmp_path, gt_scale=3)
    assert not any(tmp_path.iterdir())


def test_cli_simulate_raw_with_preview(tmp_path):
    pytest.importorskip("matplotlib")
    argv = ["simulate", "--out", str(tmp_path), "--format", "raw", "--cells", "1", "--size", "32"]
    assert main([*argv, "--workers", "1", "--preview"]) == 0
    assert (tmp_path / "Microtubules" / "Cell_001" / layout.SIM_GT_FILE).is_file()
    assert (tmp_path / "simulate_preview.png").stat().st_size > 1000


def test_presets_import_without_the_simulator():
    """`biosr --help` lists the presets: that must not load scipy or mrcfile."""
    code = (
        "import sys, biosr.simulate, biosr.simulate.presets as p; "
        "assert 'tiny' in p.PRESETS; "
        "assert not {'scipy', 'mrcfile', 'biosr.simulate.patches'} & set(sys.modules), sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
