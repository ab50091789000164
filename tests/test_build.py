"""biosr build end to end on a small hand-made release: counts, verify, alignment, determinism,
resume after a failure and after a kill, and what an existing output folder allows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import biosr.build.builder
from biosr import layout
from biosr.build import protocol
from biosr.build.builder import build
from biosr.build.options import resolve_options
from biosr.dataset.manifest import read_card, read_manifest
from biosr.dataset.verify import verify
from biosr.errors import BiosrError, DataError
from biosr.io.tiff import read_tiff
from build_release import WF_SIGMA, make_release

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_release(tmp_path_factory.mktemp("release"), cells=6, size=192, seed=1)


@pytest.fixture(scope="module")
def built(release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(release, tmp_path_factory.mktemp("built"), preset="small", seed=7)


def _manifest_bytes(dataset: Path) -> bytes:
    return (dataset / layout.MANIFEST_FILE).read_bytes()


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _aligned_r(wf: np.ndarray, gt: np.ndarray, shift: int = 0) -> float:
    """Correlation of a WF patch with its GT patch on the WF grid blurred to WF resolution."""
    if gt.shape != wf.shape:
        gt = protocol.bin2(gt)
    blurred = ndimage.gaussian_filter(gt.astype(np.float64), WF_SIGMA, mode="nearest")
    if shift:
        blurred = np.roll(blurred, (shift, shift), axis=(0, 1))
    return _r(wf, blurred)


def test_small_preset_end_to_end_passes_deep_verify(built: Path) -> None:
    expected = resolve_options("small").counts()
    assert expected == {"training": 216, "validate": 72, "test": 6}
    report = verify(built.parent.parent, deep=True)
    assert report.ok, [str(f) for f in report.findings]
    assert len(layout.pairs(built, "training")) == 216
    assert len(layout.pairs(built, "validate")) == 72
    assert len(layout.pairs(built, "test", 9)) == 6
    rows = read_manifest(built)
    assert len(rows) == 2 * (216 + 72) + 6 * 9 + 6
    assert not (built / layout.BUILD_DIR).exists()
    card = read_card(built)
    assert card["gt_scale"] == 1 and card["seed"] == 7 and card["producer"] == "biosr build"
    assert card["counts"] == expected
    assert card["protocol"]["training_cells"] == [2, 3, 4]
    assert card["pixel_size_wf_nm"] == layout.PIXEL_SIZE_WF_NM
    # provenance: a training row names its cell, level file, crop, angle and flip
    row = rows["training_wf/00000001.tif"]
    assert row["cell"] == "2" and row["source"] == "Cell_002/RawSIMData_level_01.mrc"
    assert 1 <= int(row["angle"]) <= 360 and row["flip"] == "none"
    assert rows["training_gt/00000001.tif"]["source"] == "Cell_002/SIM_gt.mrc"
    assert row["photon_level"] == "1"  # the same column as the simulator's
    assert card["pixel_size_gt_nm"] == layout.PIXEL_SIZE_WF_NM  # GT binned onto the WF grid
    assert rows["training_wf/00000216.tif"]["cell"] == "4"
    # four flip variants of crops per (cell, level)
    assert {rows[f"training_wf/{i:08d}.tif"]["flip"] for i in range(1, 9)} == {
        "none",
        "ud",
        "lr",
        "both",
    }
    image = read_tiff(built / "training_wf" / "00000001.tif", shape=(128, 128))
    assert image.min() == 0.0 and image.max() == 1.0


def test_simulated_release_end_to_end(tmp_path: Path) -> None:
    """The simulator's raw release, built with 2 workers: deep verify passes, pairs aligned."""
    from biosr.optics import psf_fwhm_nm
    from biosr.simulate.release import simulate_release

    release = simulate_release(tmp_path / "rel", cells=6, size=192, seed=0, workers=1)
    dataset = build(release, tmp_path / "out", preset="small", workers=2)
    report = verify(tmp_path / "out", deep=True)
    assert report.ok, [str(f) for f in report.findings]
    # blur the (SIM, about 2x sharper) GT to widefield resolution, in WF pixels
    sigma_wf = psf_fwhm_nm() / layout.PIXEL_SIZE_WF_NM / 2.3548
    sigma = sigma_wf * np.sqrt(1 - 0.25)
    worst, best_shifted = 1.0, -1.0
    for split in layout.SPLITS:
        for p in layout.pairs(dataset, split):
            wf = read_tiff(p.wf)
            blurred = ndimage.gaussian_filter(read_tiff(p.gt).astype(np.float64), sigma)
            worst = min(worst, _r(wf, blurred))
            best_shifted = max(best_shifted, _r(wf, np.roll(blurred, (6, 6), axis=(0, 1))))
    # level 1 is 6 photons and the GT a SIM reconstruction (its texture): aligned pairs
    # still correlate far better than pairs shifted by 6 px
    assert worst > 0.85, worst
    assert best_shifted < worst - 0.1, (best_shifted, worst)


def test_test_split_shares_crops_across_levels(built: Path) -> None:
    rows = read_manifest(built)
    for index in (1, 6):
        name = layout.file_name("test", index)
        origins = {
            (
                rows[f"test_wf/{layout.level_dir(lv)}/{name}"]["crop_y"],
                rows[f"test_wf/{layout.level_dir(lv)}/{name}"]["crop_x"],
            )
            for lv in layout.LEVELS
        }
        assert len(origins) == 1
        assert rows[f"test_gt/{name}"]["level"] == ""
        assert rows[f"test_wf/level_01/{name}"]["angle"] == "0"


def test_every_patch_is_aligned_and_a_shifted_pair_is_not(built: Path) -> None:
    worst, best_shifted = 1.0, -1.0
    for split in layout.SPLITS:
        for p in layout.pairs(built, split):
            wf, gt = read_tiff(p.wf), read_tiff(p.gt)
            worst = min(worst, _aligned_r(wf, gt))
            best_shifted = max(best_shifted, _aligned_r(wf, gt, shift=6))
    assert worst > 0.9
    assert best_shifted < 0.9


def test_gt_scale_2_keeps_dlsr_geometry_and_alignment(release: Path, tmp_path: Path) -> None:
    opts = {"training_crops": 1, "validate_crops": 1, "test_crops": 1, "flips": 2}
    dataset = build(release, tmp_path, preset="small", gt_scale=2, **opts)
    assert read_card(dataset)["gt_scale"] == 2
    assert verify(tmp_path, deep=True).ok
    for p in layout.pairs(dataset, "training") + layout.pairs(dataset, "test", 1):
        wf, gt = read_tiff(p.wf, shape=(128, 128)), read_tiff(p.gt, shape=(256, 256))
        assert _aligned_r(wf, gt) > 0.9


def test_same_result_for_any_worker_count(built: Path, release: Path, tmp_path: Path) -> None:
    other = build(release, tmp_path, preset="small", seed=7, workers=2)
    assert _manifest_bytes(other) == _manifest_bytes(built)
    assert read_card(other)["build"] == read_card(built)["build"]
    seed8 = build(release, tmp_path / "s8", preset="small", seed=8, workers=2)
    assert _manifest_bytes(seed8) != _manifest_bytes(built)


def _interrupted_build(release: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Build the small preset with cell 3 failing; return the cells attempted."""
    real_cell = biosr.build.builder.build_cell
    calls: list[int] = []

    def failing(task):
        calls.append(task.cell)
        if task.cell == 3:
            raise OSError("injected failure")
        return real_cell(task)

    monkeypatch.setattr(biosr.build.builder, "build_cell", failing)
    with pytest.raises(OSError, match="injected"):
        build(release, out, preset="small", seed=7)
    return calls


def test_resume_after_failure_skips_done_cells(
    built: Path, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _interrupted_build(release, tmp_path, monkeypatch)
    dataset = layout.dataset_dir(tmp_path)
    assert not (dataset / layout.MANIFEST_FILE).exists()
    assert not (dataset / layout.CARD_FILE).exists()
    assert calls == [1, 2, 3]  # validate cell 1, training 2, then 3 fails
    calls.clear()
    monkeypatch.undo()
    real_cell = biosr.build.builder.build_cell
    monkeypatch.setattr(
        biosr.build.builder, "build_cell", lambda task: calls.append(task.cell) or real_cell(task)
    )
    build(release, tmp_path, preset="small", seed=7)
    assert calls == [3, 4, 5, 6]
    assert _manifest_bytes(dataset) == _manifest_bytes(built)


_SLOW_BUILD = """
import sys, time
import biosr.build.builder as b
real = b.build_cell
def slow(task):
    rows = real(task)
    if task.cell == 2:
        time.sleep(60)
    return rows
b.build_cell = slow
b.build(sys.argv[1], sys.argv[2], preset="small", seed=7)
"""


def test_resume_after_kill_gives_identical_result(
    built: Path, release: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_BUILD, str(release), str(tmp_path)], env=env
    )
    work = layout.dataset_dir(tmp_path, must_exist=False) / layout.BUILD_DIR
    deadline = time.monotonic() + 60
    while not (work / "training_cell_002.csv").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "build died early"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    dataset = layout.dataset_dir(tmp_path)
    assert not (dataset / layout.MANIFEST_FILE).exists()
    # a half-written file of a killed worker is left only under a temporary name
    (dataset / "training_wf" / ".00000500.tif.999.part").write_bytes(b"half")
    build(release, tmp_path, preset="small", seed=7)
    assert _manifest_bytes(dataset) == _manifest_bytes(built)
    assert verify(tmp_path, deep=True).ok
    assert not (dataset / "training_wf" / ".00000500.tif.999.part").exists()


def test_existing_output(built: Path, release: Path, tmp_path: Path) -> None:
    before = _manifest_bytes(built)
    # the same build again: nothing to do
    assert build(release, built.parent.parent, preset="small", seed=7) == built
    assert _manifest_bytes(built) == before
    with pytest.raises(DataError, match="different dataset"):
        build(release, built.parent.parent, preset="small", seed=8)
    assert _manifest_bytes(built) == before
    foreign = tmp_path / "BioSR" / "Microtubules"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not from a biosr build"):
        build(release, tmp_path, preset="small")
    # overwrite replaces what a build owns and leaves other files alone
    copy = tmp_path / "copy"
    build(release, copy, preset="small", seed=8, test_crops=1, training_crops=1, validate_crops=1)
    (layout.dataset_dir(copy) / "notes.txt").write_text("mine")
    dataset = build(release, copy, preset="small", seed=7, overwrite=True)
    assert _manifest_bytes(dataset) == before
    assert (dataset / "notes.txt").read_text() == "mine"


def test_simulate_overwrite_after_interrupted_build_is_not_resumed(
    built: Path, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator replaces a build only with force, and then removes its unfinished plan:
    a later build must not "resume" onto the simulator's files (it used to, leaving sha256
    mismatches)."""
    from biosr.simulate import simulate_patches

    _interrupted_build(release, tmp_path, monkeypatch)
    monkeypatch.undo()
    with pytest.raises(BiosrError, match="made by `biosr build`"):
        simulate_patches(tmp_path, preset="tiny", workers=1, overwrite=True)
    dataset = simulate_patches(tmp_path, preset="tiny", workers=1, force=True)
    assert not (dataset / layout.BUILD_DIR).exists()
    assert verify(tmp_path, deep=True).ok
    with pytest.raises(DataError, match="different dataset"):
        build(release, tmp_path, preset="small", seed=7)
    with pytest.raises(BiosrError, match="made by `biosr simulate`"):
        build(release, tmp_path, preset="small", seed=7, overwrite=True)
    dataset = build(release, tmp_path, preset="small", seed=7, overwrite=True, force=True)
    assert verify(tmp_path, deep=True).ok
    assert _manifest_bytes(dataset) == _manifest_bytes(built)


def test_info_shows_a_short_source_line(built: Path) -> None:
    """A build's card records its source as a dict; info shows its path and kind only."""
    from biosr.dataset.info import dataset_info, format_info

    text = format_info(dataset_info(built, sample=1))
    line = next(x for x in text.splitlines() if x.startswith("card:"))
    assert line == f"card: source {read_card(built)['source']['path']} (folder), gt_scale 1"


def test_corrupt_plan_is_a_data_error(release: Path, tmp_path: Path) -> None:
    work = tmp_path / "BioSR" / "Microtubules" / layout.BUILD_DIR
    work.mkdir(parents=True)
    (work / "plan.json").write_text('{"fingerprint": ')  # a build killed mid-write of old
    with pytest.raises(DataError, match=r"plan\.json: unreadable build plan"):
        build(release, tmp_path, preset="small", seed=7)


def test_resolve_options_stores_ints() -> None:
    options = resolve_options("small", flips=2.0, patch_size=64.0, gt_scale=2.0, test_crops=4.0)
    values = (options.flips, options.patch_size, options.gt_scale, options.crops["test"])
    assert [type(v) for v in values] == [int, int, int, int]
    assert options.flat()["test_crops"] == 4 and options.cells == resolve_options("small").cells


def test_64px_build_verifies_clean_but_not_as_published(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify takes the patch side from the card; --expect published still demands 128 px."""
    from biosr.cli import main

    args = ["build", "--source", str(release), "--out", str(tmp_path), "--preset", "small"]
    sizes = ["--patch-size", "64", "--training-crops", "1", "--validate-crops", "1"]
    assert main([*args, *sizes, "--gt-scale", "2"]) == 0
    dataset = layout.dataset_dir(tmp_path)
    assert read_card(dataset)["patch_size"] == 64
    assert read_tiff(layout.pair(dataset, "training", 1).wf).shape == (64, 64)
    assert read_tiff(layout.pair(dataset, "training", 1).gt).shape == (128, 128)
    report = verify(tmp_path, deep=True)
    assert report.ok and report.patch_size == 64 and report.gt_scale == 2, report.findings
    capsys.readouterr()
    assert main(["verify", str(tmp_path), "--deep", "--quiet"]) == 0
    published = verify(tmp_path, expect="published", deep=True)
    assert published.patch_size == layout.PATCH_SIZE
    shape = {f.path for f in published.findings if f.reason.startswith("wrong shape")}
    assert shape == {str(f) for f in dataset.rglob("*.tif")}  # every WF and GT file
    assert main(["verify", str(tmp_path), "--expect", "published", "--quiet"]) == 1
