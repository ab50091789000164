"""Every structure simulated in both formats: the release's files, frames, shapes, voxel sizes;
the published layout's levels, crops and GT scale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biosr import layout
from biosr.cli import main
from biosr.dataset.manifest import read_card, read_manifest
from biosr.errors import BiosrError
from biosr.io.mrc import read_header, read_mrc
from biosr.io.tiff import read_tiff
from biosr.simulate import simulate_patches, simulate_release
from biosr.simulate.presets import preset_for
from biosr.simulate.release import SIM_GT_B_GAMMA, gamma_view, release_layout
from conftest import tree_digest

SIZE = 32
STRUCTURES = tuple(layout.STRUCTURES)


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, Path]:
    """One 32 px cell of every structure, as `biosr simulate --format raw` writes it."""
    out = tmp_path_factory.mktemp("releases")
    return {
        name: simulate_release(out, cells=1, size=SIZE, seed=0, workers=1, structure=name)
        for name in STRUCTURES
    }


@pytest.mark.parametrize("name", STRUCTURES)
def test_release_files_are_the_layouts(releases, name):
    s = layout.get_structure(name)
    folder = releases[name]
    assert folder.name == name
    files = layout.release_files(folder, 1, structure=s)
    cell = layout.release_cell_dir(folder, 1)
    written = {p for p in cell.rglob("*") if p.is_file()}
    assert written == set(files.values()) | {cell / n for n in s.extra_files}
    assert sum(k.startswith("level_") for k in files) == s.n_levels
    for key, path in files.items():
        if key.startswith("sim_gt"):
            stack = read_mrc(path, modes=(2,))
            shape = (1, s.gt_scale * SIZE, s.gt_scale * SIZE)
            assert stack.data.shape == shape and stack.data.dtype == np.float32, key
            assert stack.voxel_size_nm == pytest.approx(s.pixel_size_gt_nm, abs=1e-3)
        else:
            assert int(read_header(path).mode) == 6, key
            stack = read_mrc(path)
            assert stack.data.shape == (s.frames, SIZE, SIZE), key
            assert stack.data.dtype == np.uint16
            assert stack.voxel_size_nm == pytest.approx(s.pixel_size_wf_nm, abs=1e-3)
    # The levels' ladder: more photons, higher counts above the offset; the raw GT highest.
    means = [read_mrc(files[f"level_{lv:02d}"]).data.mean() for lv in s.levels]
    assert np.all(np.diff(means) > 0), means
    raw_gt = next(v for k, v in files.items() if k.startswith("raw_gt"))
    assert read_mrc(raw_gt).data.mean() > means[-1]
    card = json.loads((folder / layout.CARD_FILE).read_text())
    assert card["structure"] == name and card["cells"] == 1 and card["raw_frames"] == s.frames
    assert card["gt_size"] == s.gt_scale * SIZE and card["layout"] == release_layout(s)
    assert len(card["physics"]["photons_per_level"]) == s.n_levels
    assert card["physics"]["sim_pattern_period_nm"] == s.line_spacing_nm
    assert card["physics"]["sim_phases"] == s.phases


def test_release_layout_names_every_file():
    assert release_layout("ER") == (
        "ER/Cell_XXX/{RawSIMData/RawSIMData_level_01..06,"
        "RawGTSIMData/RawGTSIMData_level_01..06,GTSIM/GTSIM_level_01..06}.mrc"
    )
    assert release_layout("F-actin_Nonlinear").endswith(
        "{RawSIMData_level_01..09,RawSIMData_gt,SIM_gt_a,SIM_gt_b}.mrc"
    )


def test_er_has_its_own_truth_per_level(releases):
    files = layout.release_files(releases["ER"], 1, structure="ER")
    gts = [read_mrc(files[f"sim_gt_{lv:02d}"]).data[0].astype(float) for lv in (1, 6)]
    raws = [read_mrc(files[f"raw_gt_{lv:02d}"]).data.astype(float) for lv in (1, 6)]
    # Each level's GT is its own acquisition (noise), of the same (static) specimen.
    assert not np.array_equal(gts[0], gts[1]) and not np.array_equal(raws[0], raws[1])
    assert np.corrcoef(gts[0].ravel(), gts[1].ravel())[0, 1] > 0.8
    assert raws[0].mean() == pytest.approx(raws[1].mean(), rel=0.02)


def test_nonlinear_gt_b_is_the_gamma_view_of_gt_a(releases):
    cell = layout.release_cell_dir(releases["F-actin_Nonlinear"], 1)
    a = read_mrc(cell / "SIM_gt_a.mrc", modes=(2,)).data[0]
    b = read_mrc(cell / "SIM_gt_b.mrc", modes=(2,)).data[0]
    np.testing.assert_allclose(b, gamma_view(a, SIM_GT_B_GAMMA), rtol=1e-5, atol=1e-3)
    assert b.max() == pytest.approx(a.max(), rel=1e-6)
    card = json.loads((releases["F-actin_Nonlinear"] / layout.CARD_FILE).read_text())
    assert card["gt_kind"] == "ideal" and card["gt_requested"] == "sim"
    assert card["pixel_size_wf_nm"] == 60.4 and card["physics"]["sim_saturation"] > 0


def test_release_deterministic_for_any_worker_count(tmp_path):
    one = simulate_release(tmp_path / "a", cells=2, size=SIZE, seed=4, workers=1, structure="ER")
    two = simulate_release(tmp_path / "b", cells=2, size=SIZE, seed=4, workers=2, structure="ER")
    assert tree_digest(one) == tree_digest(two)
    cells = {k for k in tree_digest(one) if k.startswith("Cell_")}
    expected = {
        p.relative_to(one).as_posix()
        for c in (1, 2)
        for p in layout.release_files(one, c, structure="ER").values()
    }
    assert cells == expected and len(expected) == 2 * 18


@pytest.mark.parametrize("name", STRUCTURES)
def test_published_format_has_the_structures_levels(tmp_path, name):
    s = layout.get_structure(name)
    base = simulate_patches(tmp_path, preset="tiny", seed=0, workers=1, structure=name)
    assert base == tmp_path / layout.COLLECTION_DIR / name
    levels = sorted(p.name for p in (base / "test_wf").iterdir())
    assert levels == [layout.level_dir(lv, structure=s) for lv in s.levels]
    counts = preset_for("tiny", s).counts(s)
    assert counts["training"] == s.n_levels * layout.FLIPS  # 1 cell x 1 crop
    for split in layout.SPLITS:
        assert len(layout.pairs(base, split, structure=s)) == counts[split] * (
            s.n_levels if split == "test" else 1
        )
    card = read_card(base)
    assert card["structure"] == name and card["counts"] == counts
    assert card["physics"]["sim_phases"] == s.phases
    rows = read_manifest(base)
    levels_seen = {r["photon_level"] for r in rows.values() if r["split"] == "training"}
    assert levels_seen == {str(lv) for lv in s.levels}
    pair = layout.pairs(base, "test", structure=s)[0]
    assert read_tiff(pair.gt).shape == read_tiff(pair.wf).shape == (128, 128)


def test_nonlinear_published_format_at_native_gt_scale(tmp_path):
    s = layout.get_structure("F-actin_Nonlinear")
    with pytest.raises(BiosrError, match="gt_scale must be 1 or 3, got 2"):
        simulate_patches(tmp_path, gt_scale=2, structure=s)
    base = simulate_patches(tmp_path, preset="tiny", gt_scale=3, workers=1, structure=s)
    pair = layout.pairs(base, "validate", structure=s)[0]
    assert read_tiff(pair.gt).shape == (3 * layout.PATCH_SIZE,) * 2
    card = read_card(base)
    assert card["gt_scale"] == 3 and card["pixel_size_gt_nm"] == pytest.approx(60.4 / 3)
    assert card["wf"].startswith("sum of the 25 raw SIM frames")
    assert preset_for("published", s).counts(s) == s.counts


def test_cli_simulate_structure_both_formats(tmp_path, capsys):
    argv = ["simulate", "--structure", "ER", "--workers", "1"]
    raw = ["--format", "raw", "--cells", "1", "--size", str(SIZE)]
    assert main([*argv, "--out", str(tmp_path / "r"), *raw]) == 0
    assert (tmp_path / "r" / "ER" / "Cell_001" / "GTSIM" / "GTSIM_level_06.mrc").is_file()
    assert main([*argv, "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "BioSR" / "ER" / "test_wf" / "level_06").is_dir()
    assert not (tmp_path / "p" / "BioSR" / "ER" / "test_wf" / "level_07").exists()
    capsys.readouterr()
    code = main(["simulate", "--out", str(tmp_path / "q"), "--gt-scale", "3"])
    assert code == 1
    err = capsys.readouterr().err
    assert "gt_scale must be 1 or 2, got 3" in err and err.count("\n") == 1
