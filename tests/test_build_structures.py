"""biosr build and verify for every BioSR structure, on small hand-written releases.

Each release is written straight with :func:`biosr.io.mrc.write_mrc` in the
structure's own shape (layout.release_files: ER's RawSIMData/ and GTSIM/ with
a GT per level, F-actin's 12 levels, nonlinear SIM's 25-frame stacks and 3x
SIM_gt_a.mrc), 64 px raw frames, the table's voxel sizes. Values are chosen so
that a patch tells where it came from: level L's raw frames are ``wf + f +
1000 L`` (frame f), so a widefield mean of all frames is ``wf + (frames - 1) /
2 + 1000 L``, and ER's GT of level L is ``gt + 1000 L``.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from biosr import layout
from biosr.build import protocol
from biosr.build.builder import build
from biosr.build.options import resolve_options
from biosr.build.source import describe_checks
from biosr.cli import main
from biosr.dataset.info import dataset_info, format_info
from biosr.dataset.manifest import read_card, read_manifest
from biosr.dataset.verify import verify
from biosr.errors import BiosrError, DataError
from biosr.io.mrc import read_mrc, write_mrc
from biosr.io.tiff import read_tiff

SIZE, PATCH = 64, 16
#: Small crop counts: 1 validate cell, 3 training cells, 2 test cells (the small preset).
CROPS = {"training_crops": 1, "validate_crops": 1, "test_crops": 2, "flips": 2}
OFFSET = 1000  # per level, in raw counts and ER GT values


def write_release(
    root: Path,
    structure: str,
    *,
    cells: int = 6,
    seed: int = 0,
    name: str | None = None,
    frames: int | None = None,
    gt_scale: int | None = None,
    wf_voxel_nm: float | None = None,
) -> Path:
    """Write ``root/<name or structure>/Cell_001..`` in `structure`'s shape; return the folder.

    `frames`, `gt_scale` and `wf_voxel_nm` override the table's (to make bad releases).
    """
    s = layout.get_structure(structure)
    folder = root / (name or s.name)
    rng = np.random.default_rng(seed)
    frames, scale = frames or s.frames, gt_scale or s.gt_scale
    wf_nm = wf_voxel_nm or s.pixel_size_wf_nm
    for cell in range(1, cells + 1):
        files = layout.release_files(folder, cell, structure=s)
        for file in files.values():
            file.parent.mkdir(parents=True, exist_ok=True)
        gt = ndimage.gaussian_filter(rng.random((scale * SIZE, scale * SIZE)), 2.0 * scale)
        gt = ((gt - gt.min()) / np.ptp(gt) * 100.0).astype(np.float32)
        wf = gt.reshape(SIZE, scale, SIZE, scale).mean(axis=(1, 3))
        for level in s.levels:
            stack = wf[None] + np.arange(frames)[:, None, None] + OFFSET * level
            raw = np.round(stack).astype(np.uint16)
            write_mrc(files[f"level_{level:02d}"], raw, voxel_size_nm=wf_nm)
            if s.gt_per_level:
                level_gt = gt + np.float32(OFFSET * level)
                write_mrc(files[f"sim_gt_{level:02d}"], level_gt, voxel_size_nm=wf_nm / scale)
                write_mrc(files[f"raw_gt_{level:02d}"], raw, voxel_size_nm=wf_nm)
        if not s.gt_per_level:
            write_mrc(files["sim_gt"], gt, voxel_size_nm=wf_nm / scale)
            write_mrc(files["raw_gt"], raw, voxel_size_nm=wf_nm)
        for extra in s.extra_files:  # SIM_gt_b.mrc: a gamma view, not read
            write_mrc(files["sim_gt"].parent / extra, gt**0.6, voxel_size_nm=wf_nm / scale)
    return folder


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("releases")
    return {name: write_release(root, name, seed=i) for i, name in enumerate(layout.STRUCTURES)}


@pytest.fixture(scope="module")
def built(releases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each structure built at its native GT scale, values as stored (not normalised)."""
    out = {}
    for name, release in releases.items():
        s = layout.get_structure(name)
        out[name] = build(
            release,
            tmp_path_factory.mktemp(f"built_{name}"),
            preset="small",
            structure=name,
            gt_scale=s.gt_scale,
            patch_size=PATCH,
            normalize="stored",
            workers=1,
            **CROPS,
        )
    return out


def _one_line_error(source: Path, out: Path, match: str, **opts) -> str:
    """Build `source`: it must fail with one DataError line matching `match`, writing nothing."""
    with pytest.raises(DataError, match=match) as info:
        build(source, out, preset="small", patch_size=PATCH, workers=1, **{**CROPS, **opts})
    assert "\n" not in str(info.value)
    assert not out.exists(), "a failed build must leave nothing behind"
    return str(info.value)


# --------------------------------------------------------------------------- #
# Every structure: counts, levels, shapes, card, verify, info
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", list(layout.STRUCTURES))
def test_each_structure_builds_with_the_counts_the_table_predicts(
    name: str, built: dict[str, Path]
) -> None:
    s = layout.get_structure(name)
    dataset = built[name]
    assert dataset == dataset.parent.parent / s.dataset_dir  # ROOT/BioSR/<Structure>
    assert layout.structure_of(dataset) is s
    # small preset: 3 training cells, 1 validate cell, 2 test cells
    expected = {
        "training": 3 * len(s.levels) * CROPS["flips"] * CROPS["training_crops"],
        "validate": 1 * len(s.levels) * CROPS["flips"] * CROPS["validate_crops"],
        "test": 2 * CROPS["test_crops"],
    }
    card = read_card(dataset)
    assert card["counts"] == expected
    assert card["structure"] == name and card["layout"] == s.dataset_dir.as_posix()
    assert card["levels"] == list(s.levels) and card["frames"] == s.frames
    assert card["gt_scale"] == card["release_gt_scale"] == s.gt_scale
    assert card["pixel_size_wf_nm"] == s.pixel_size_wf_nm
    assert card["pixel_size_gt_nm"] == pytest.approx(s.pixel_size_wf_nm / s.gt_scale)
    assert card["protocol"]["widefield"] == f"mean of the {s.frames} raw SIM frames of a level"
    assert len(layout.pairs(dataset, "training")) == expected["training"]
    assert len(layout.pairs(dataset, "validate")) == expected["validate"]
    levels_on_disk = sorted(p.name for p in (dataset / "test_wf").iterdir())
    assert levels_on_disk == [layout.level_dir(lv, structure=s) for lv in s.levels]
    for level in s.levels:
        assert len(layout.pairs(dataset, "test", level, structure=s)) == expected["test"]
    for p in layout.pairs(dataset, "training")[:4] + layout.pairs(dataset, "test", s.levels[-1]):
        assert read_tiff(p.wf).shape == (PATCH, PATCH)
        assert read_tiff(p.gt).shape == (PATCH * s.gt_scale, PATCH * s.gt_scale)
    # every level's widefield is that level's stack (1000 per level), of all its frames
    rows = read_manifest(dataset)
    for p in layout.pairs(dataset, "validate"):
        row = rows[p.wf.relative_to(dataset).as_posix()]
        level = int(row["photon_level"])
        assert row["source"] == f"Cell_001/{s.level_file_name(level)}"
        wf = read_tiff(p.wf)
        assert int(np.median(wf)) // OFFSET == level
    report = verify(dataset.parent.parent, deep=True, structure=name)
    assert report.ok, [str(f) for f in report.findings]
    assert report.structure == name and report.gt_scale == s.gt_scale
    assert [r.level for r in report.rows if r.split == "test"] == list(s.levels)


@pytest.mark.parametrize("name", ["ER", "F-actin"])
def test_verify_and_info_follow_the_card_structure(
    name: str, built: dict[str, Path], tmp_path: Path
) -> None:
    s = layout.get_structure(name)
    dataset = Path(shutil.copytree(built[name], tmp_path / "BioSR" / name))
    # the only structure under ROOT/BioSR is found without --structure
    report = verify(tmp_path, deep=True)
    assert report.ok and report.structure == name, [str(f) for f in report.findings]
    info = dataset_info(tmp_path, sample=2)
    assert info["structure"] == name
    test_levels = [r["level"] for r in info["splits"] if r["split"] == "test"]
    assert test_levels == list(s.levels)
    assert [r["photons"] for r in info["splits"] if r["split"] == "test"] == [
        pytest.approx(s.photons[lv]) for lv in s.levels
    ]
    assert format_info(info).splitlines()[0] == f"dataset: {dataset} ({name})"
    # a level beyond the structure's is unexpected, a missing one is missing
    last = layout.level_dir(s.levels[-1], structure=s)
    (dataset / "test_wf" / "level_13").mkdir()
    shutil.rmtree(dataset / "test_wf" / last)
    found = {f.path: f.reason for f in verify(tmp_path).findings}
    assert found[str(dataset / "test_wf" / "level_13")] == (
        f"unexpected entry (expected level_01 .. {last})"
    )
    assert found[str(dataset / "test_wf" / last)] == "missing folder"
    # asked for another structure than the card names: a finding, checked as the card says
    wrong = verify(dataset, structure="CCPs")
    assert wrong.structure == name
    reasons = {f.reason for f in wrong.findings}
    assert f"the dataset is {name} (its card), not CCPs; checked as {name}" in reasons
    # the full DL-SR counts of the structure, not Microtubules' published ones
    reasons = {f.reason for f in verify(dataset, expect="published").findings}
    training = s.counts["training"]
    assert (
        f"{len(layout.pairs(dataset, 'training')):,} inputs, expected {training:,} "
        f"(the DL-SR protocol for {name})" in reasons
    )


def test_a_card_naming_microtubules_checks_nine_levels(
    built: dict[str, Path], tmp_path: Path
) -> None:
    dataset = Path(shutil.copytree(built["ER"], tmp_path / "data"))
    card = json.loads((dataset / layout.CARD_FILE).read_text())
    card["structure"] = "Microtubules"
    (dataset / layout.CARD_FILE).write_text(json.dumps(card))
    report = verify(dataset)
    assert report.structure == "Microtubules"
    missing = {f.path for f in report.findings if f.reason == "missing folder"}
    assert missing == {str(dataset / "test_wf" / f"level_{lv:02d}") for lv in (7, 8, 9)}


# --------------------------------------------------------------------------- #
# ER: a GT per level; nonlinear SIM: 25 frames and a 3x GT
# --------------------------------------------------------------------------- #


def test_er_cuts_each_level_against_its_own_gt(built: dict[str, Path]) -> None:
    er = layout.get_structure("ER")
    dataset = built["ER"]
    rows = read_manifest(dataset)
    seen = set()
    for split in ("training", "validate"):
        for p in layout.pairs(dataset, split):
            gt_row = rows[p.gt.relative_to(dataset).as_posix()]
            level = int(gt_row["photon_level"])
            assert gt_row["source"].endswith(f"GTSIM/GTSIM_level_{level:02d}.mrc")
            gt = read_tiff(p.gt)  # values gt + 1000 L: the level's own GT
            assert gt.min() >= OFFSET * level and gt.max() <= OFFSET * level + 100
            seen.add(level)
    assert seen == set(er.levels)
    # The layout gives each level its own test targets: each holds that level's GT.
    assert len({layout.split_dirs("test", lv, structure=er)[1] for lv in er.levels}) == 6
    for level in er.levels:
        for p in layout.pairs(dataset, "test", level, structure=er):
            assert int(np.median(read_tiff(p.gt))) // OFFSET == level


@pytest.mark.parametrize("gt_scale", [3, 1])
def test_nonlinear_widefield_is_the_mean_of_25_frames_and_the_gt_3x(
    releases: dict[str, Path], tmp_path: Path, gt_scale: int
) -> None:
    s = layout.get_structure("F-actin_Nonlinear")
    dataset = build(
        releases[s.name],
        tmp_path,
        preset="small",
        structure=s.name,
        gt_scale=gt_scale,
        patch_size=PATCH,
        normalize="stored",
        rotate=False,
        workers=1,
        training_crops=1,
        validate_crops=1,
        test_crops=2,
        flips=1,
    )
    rows = read_manifest(dataset)
    gt_file = releases[s.name] / "Cell_005" / "SIM_gt_a.mrc"
    gt_full = read_mrc(gt_file).data[0].astype(np.float64)
    for level in (1, 9):
        stack = read_mrc(releases[s.name] / "Cell_005" / s.level_file_name(level)).data
        assert stack.shape[0] == 25
        for p in layout.pairs(dataset, "test", level, structure=s):
            row = rows[p.wf.relative_to(dataset).as_posix()]
            if row["cell"] != "5":
                continue
            y, x = int(row["crop_y"]), int(row["crop_x"])
            wf = read_tiff(p.wf)
            # the mean of frames 0..24 of wf + f + 1000 L is wf + 12 + 1000 L
            np.testing.assert_allclose(
                wf, stack[:, y : y + PATCH, x : x + PATCH].astype(np.float64).mean(axis=0)
            )
            assert np.median(wf) == pytest.approx(
                np.median(stack[0, y : y + PATCH, x : x + PATCH]) + 12, abs=0.5
            )
            crop = gt_full[3 * y : 3 * (y + PATCH), 3 * x : 3 * (x + PATCH)]
            if gt_scale == 1:
                crop = crop.reshape(PATCH, 3, PATCH, 3).mean(axis=(1, 3))
            np.testing.assert_allclose(read_tiff(p.gt), crop, rtol=1e-6)
    assert read_card(dataset)["protocol"]["ground_truth"] == "SIM_gt_a.mrc" + (
        ", 3x3 binned onto the WF grid" if gt_scale == 1 else ""
    )


def test_crop_pair_at_3x_maps_wf_pixel_u_to_gt_3u_plus_1() -> None:
    rng = np.random.default_rng(3)
    gt = ndimage.gaussian_filter(rng.random((144, 144)), 3).astype(np.float32)
    wf = protocol.bin_mean(gt, 3)
    corner, patch = (10, 12), 16
    wf_p, gt_p = protocol.crop_pair(wf, gt, corner, patch, 0.0)
    assert gt_p.shape == (48, 48)
    np.testing.assert_array_equal(protocol.bin_mean(gt_p, 3), wf_p)
    # 90 degrees is exact on both grids only if the centres map as 3u + 1
    wf_r, gt_r = protocol.crop_pair(wf, gt, corner, patch, 90.0)
    np.testing.assert_allclose(wf_r, np.rot90(wf_p), atol=1e-5)
    np.testing.assert_allclose(gt_r, np.rot90(gt_p), atol=1e-5)
    wf_a, gt_a = protocol.crop_pair(wf, gt, corner, patch, 37.0)
    assert np.corrcoef(protocol.bin_mean(gt_a, 3).ravel(), wf_a.ravel())[0, 1] > 0.99
    with pytest.raises(ValueError, match="not a whole multiple"):
        protocol.crop_pair(wf, gt[:100, :100], corner, patch, 0.0)


# --------------------------------------------------------------------------- #
# Options: crops and levels follow the structure
# --------------------------------------------------------------------------- #


def test_options_take_the_structures_crops_levels_and_gt_scale() -> None:
    for s in layout.STRUCTURES.values():
        options = resolve_options("published", structure=s.name)
        assert options.crops == s.crops and options.counts() == s.counts
        assert options.levels == s.levels
    er = resolve_options("published", structure="er")  # any case
    assert er.structure == "ER" and er.crops["training"] == 38 * 9 // 6  # 342 per cell, 6 levels
    assert er.replace(structure="F-actin").crops == layout.get_structure("F-actin").crops
    assert er.replace(training_crops=5, structure="CCPs").crops["training"] == 5
    small = resolve_options("small", structure="F-actin")  # the preset's own crops stay
    assert small.crops == resolve_options("small").crops
    assert small.counts()["training"] == 3 * 12 * 4 * 2
    assert resolve_options("published").flat()["structure"] == "Microtubules"
    assert resolve_options(structure="F-actin_Nonlinear", gt_scale=3).gt_scale == 3
    with pytest.raises(BiosrError, match="gt_scale must be 1 or 3 for F-actin_Nonlinear, got 2"):
        resolve_options(structure="F-actin_Nonlinear", gt_scale=2)
    with pytest.raises(BiosrError, match="gt_scale must be 1 or 2 for ER, got 3"):
        resolve_options(structure="ER", gt_scale=3)
    with pytest.raises(BiosrError, match="unknown structure 'Mitochondria'"):
        resolve_options(structure="Mitochondria")


# --------------------------------------------------------------------------- #
# Uncertain facts: checked against the headers and folders, reported
# --------------------------------------------------------------------------- #


def test_uncertain_facts_are_checked_and_reported(
    built: dict[str, Path], releases: dict[str, Path], tmp_path: Path, capsys
) -> None:
    nonlinear = read_card(built["F-actin_Nonlinear"])
    assert nonlinear["uncertain"] == ["pixel_size_wf_nm", "line_spacing_nm"]
    fact = nonlinear["checked"]["pixel_size_wf_nm"]
    assert fact["table"] == 60.4 and fact["found"] == [60.4] and fact["agrees"] is True
    assert fact["files"] == 6 * 9  # every level of every cell read
    lines = describe_checks("F-actin_Nonlinear", nonlinear["checked"])
    assert (
        lines[0] == "pixel_size_wf_nm (uncertain): table 60.4, MRC headers 60.4 (54 files): agrees"
    )
    assert lines[1].startswith("line_spacing_nm (uncertain): table 180.0, not in the files")
    ccps = read_card(built["CCPs"])["checked"]["release_cells"]
    assert ccps == {"table": 54, "found": 6, "agrees": False}
    er = describe_checks("ER", read_card(built["ER"])["checked"])
    assert (
        "level_file (uncertain): table RawSIMData/RawSIMData_level_{level:02d}.mrc, "
        "found in 6 of 6 cells: agrees" in er
    )
    assert (
        "raw_gt_file (uncertain): table RawGTSIMData/RawGTSIMData_level_{level:02d}.mrc, "
        "found in 6 of 6 cells: agrees" in er
    )
    # nonlinear headers at 62.6 nm: the build goes on, says so, and keeps the table's value
    odd = write_release(tmp_path / "odd", "F-actin_Nonlinear", wf_voxel_nm=62.6)
    out = tmp_path / "out"
    args = ["build", "--source", str(odd), "--out", str(out), "--preset", "small"]
    small = ["--structure", "F-actin_Nonlinear", "--patch-size", str(PATCH), "--workers", "1"]
    crops = ["--training-crops", "1", "--validate-crops", "1", "--test-crops", "1"]
    capsys.readouterr()
    assert main([*args, *small, *crops, "--gt-scale", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"built {out / 'BioSR' / 'F-actin_Nonlinear'}"
    assert (
        "checked pixel_size_wf_nm (uncertain): table 60.4, MRC headers 62.6 (54 files): "
        "DIFFERS; the TIFFs and the card keep the table's value" in printed
    )
    card = read_card(out / "BioSR" / "F-actin_Nonlinear")
    assert card["checked"]["pixel_size_wf_nm"]["agrees"] is False
    assert card["pixel_size_wf_nm"] == 60.4
    assert main(["verify", str(out), "--deep", "--quiet"]) == 0


# --------------------------------------------------------------------------- #
# Bad input: one line naming the file and the reason, nothing written
# --------------------------------------------------------------------------- #


def _zip(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for file in sorted(folder.rglob("*.mrc")):
            zf.write(file, f"{folder.name}/{file.relative_to(folder).as_posix()}")
    return archive


def test_a_release_of_another_structure_is_named(releases: dict[str, Path], tmp_path: Path) -> None:
    er, mt = releases["ER"], releases["Microtubules"]
    cell = "Cell_002"  # the first cell checked: training cells come first
    msg = _one_line_error(er, tmp_path / "o1", rf"{er / cell}: looks like a release of ER")
    assert msg.endswith(
        "not Microtubules (it has RawSIMData/RawSIMData_level_01.mrc, not "
        "RawSIMData_level_01.mrc); build it as that structure (--structure ER, structure='ER')"
    )
    archive = _zip(er, tmp_path / "ER.zip")
    _one_line_error(archive, tmp_path / "o2", rf"ER\.zip:ER/{cell}: looks like a release of ER")
    msg = _one_line_error(
        mt, tmp_path / "o3", "looks like a release of CCPs or Microtubules, not ER", structure="ER"
    )
    assert "(it has RawSIMData_level_01.mrc, not RawSIMData/RawSIMData_level_01.mrc)" in msg
    _one_line_error(
        releases["F-actin"],
        tmp_path / "o4",
        r"looks like a release of F-actin, not Microtubules \(it has RawSIMData_level_10\.mrc, "
        r"and Microtubules has 9 levels\)",
    )
    _one_line_error(
        releases["F-actin_Nonlinear"],
        tmp_path / "o5",
        r"looks like a release of F-actin_Nonlinear, not F-actin \(it has SIM_gt_a\.mrc, not "
        r"RawSIMData_level_10\.mrc\)",
        structure="F-actin",
    )
    _one_line_error(
        mt,
        tmp_path / "o6",
        r"looks like a release of CCPs or Microtubules, not F-actin_Nonlinear",
        structure="F-actin_Nonlinear",
    )
    # the parent of a release folder of another structure
    only_er = tmp_path / "only"
    shutil.copytree(er, only_er / "ER")
    _one_line_error(
        only_er,
        tmp_path / "o7",
        rf"{only_er}: holds ER/ but no Microtubules/ or Microtubules\.zip; build it as that "
        r"structure \(--structure ER",
    )
    # CCPs and Microtubules have one shape: a CCPs-named release is not built as Microtubules
    ccps_zip = _zip(releases["CCPs"], tmp_path / "CCPs.zip")
    _one_line_error(ccps_zip, tmp_path / "o8", r"the release is named CCPs, not Microtubules")
    assert (
        build(
            ccps_zip,
            tmp_path / "o9",
            preset="small",
            structure="CCPs",
            patch_size=PATCH,
            workers=1,
            **CROPS,
        ).name
        == "CCPs"
    )


def test_missing_level_folder_file_and_wrong_frames(
    releases: dict[str, Path], tmp_path: Path
) -> None:
    er = Path(shutil.copytree(releases["ER"], tmp_path / "er" / "ER"))
    shutil.rmtree(er / "Cell_003" / "RawSIMData")
    _one_line_error(
        er,
        tmp_path / "o1",
        rf"{er / 'Cell_003' / 'RawSIMData'}: folder not found \(cell 3; ER keeps "
        r"RawSIMData/RawSIMData_level_01\.mrc there\)",
        structure="ER",
    )
    fa = Path(shutil.copytree(releases["F-actin"], tmp_path / "fa" / "F-actin"))
    (fa / "Cell_002" / "RawSIMData_level_12.mrc").unlink()
    _one_line_error(
        fa,
        tmp_path / "o2",
        rf"{fa / 'Cell_002' / 'RawSIMData_level_12.mrc'}: file not found \(cell 2\)",
        structure="F-actin",
    )
    # a nonlinear release whose stacks have 9 frames
    nine = write_release(tmp_path / "nine", "F-actin_Nonlinear", cells=6, frames=9)
    msg = _one_line_error(
        nine,
        tmp_path / "o3",
        rf"{nine / 'Cell_002' / 'RawSIMData_level_01.mrc'}: 9 frames, expected 25 "
        r"\(F-actin_Nonlinear: 5 orientations x 5 phases\)",
        structure="F-actin_Nonlinear",
    )
    assert msg.endswith("9 frames is a CCPs or ER or Microtubules or F-actin stack")
    # a 25-frame stack passed as a linear structure
    write_release(tmp_path / "many", "Microtubules", cells=6, frames=25)
    _one_line_error(
        tmp_path / "many" / "Microtubules",
        tmp_path / "o4",
        r"RawSIMData_level_01\.mrc: 25 frames, expected 9 .*25 frames is a F-actin_Nonlinear",
    )
    # a nonlinear GT at 2x
    twice = write_release(tmp_path / "twice", "F-actin_Nonlinear", cells=6, gt_scale=2)
    _one_line_error(
        twice,
        tmp_path / "o5",
        r"Cell_002/SIM_gt_a\.mrc: GT 128x128 and raw 64x64 are not in a 1:3 ratio",
        structure="F-actin_Nonlinear",
    )


def test_cli_bad_structure_input_is_one_line(
    releases: dict[str, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "o"
    code = main(["build", "--source", str(releases["ER"]), "--out", str(out), "--preset", "small"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and not out.exists()
    assert (
        err.startswith("biosr: error: ") and "looks like a release of ER, not Microtubules" in err
    )
    args = ["build", "--source", str(releases["ER"]), "--out", str(out), "--structure", "ER"]
    assert main([*args, "--gt-scale", "3"]) == 1
    assert "gt_scale must be 1 or 2 for ER, got 3" in capsys.readouterr().err
