"""biosr build on bad input (one line naming the file, nothing written), zip sources, the
protocol's array functions, and the real BioSR raw SIM stack."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from biosr import layout
from biosr.build import protocol
from biosr.build.builder import build
from biosr.build.options import parse_cells
from biosr.build.source import open_source
from biosr.cli import main
from biosr.errors import BiosrError, DataError
from biosr.io.mrc import read_mrc, write_mrc
from build_release import make_release

SMALL = {"training_crops": 1, "validate_crops": 1, "test_crops": 1, "flips": 1}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_release(tmp_path_factory.mktemp("release"), cells=6, size=192, seed=2)


@pytest.fixture
def release(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the release that a test may damage."""
    return Path(shutil.copytree(pristine, tmp_path / "src" / "Microtubules"))


def _zip(folder: Path, archive: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for file in sorted(folder.rglob("*.mrc")):
            zf.write(file, f"Microtubules/{file.relative_to(folder).as_posix()}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return archive


def _expect_error(source: Path, out: Path, match: str, **opts) -> None:
    with pytest.raises(DataError, match=match):
        build(source, out, preset="small", **{**SMALL, **opts})
    assert not out.exists(), "a failed build must leave nothing behind"


def test_missing_cell_and_level_file(release: Path, tmp_path: Path) -> None:
    _expect_error(release, tmp_path / "o1", r"Cell_007: cell 7 not found", test_cells="5-7")
    (release / "Cell_004" / "RawSIMData_level_03.mrc").unlink()
    _expect_error(release, tmp_path / "o2", r"Cell_004/RawSIMData_level_03\.mrc: file not found")
    (release / "Cell_004" / "RawSIMData_level_03.mrc").mkdir()  # a folder where a file should be
    _expect_error(release, tmp_path / "o3", r"Cell_004/RawSIMData_level_03\.mrc: unreadable")


def test_truncated_mrc(release: Path, tmp_path: Path) -> None:
    file = release / "Cell_002" / "RawSIMData_level_09.mrc"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 100])
    _expect_error(release, tmp_path / "o", r"RawSIMData_level_09\.mrc: truncated MRC")
    file.write_bytes(data[:500])
    _expect_error(release, tmp_path / "o", r"RawSIMData_level_09\.mrc: truncated MRC .*header")


def test_unexpected_mode_frames_and_ratio(release: Path, tmp_path: Path) -> None:
    gt = release / "Cell_001" / "SIM_gt.mrc"
    values = read_mrc(gt).data
    write_mrc(gt, values.astype(np.uint16), voxel_size_nm=31.3)
    _expect_error(release, tmp_path / "o", r"Cell_001/SIM_gt\.mrc: unexpected MRC mode 6")
    write_mrc(gt, values[:, :300, :300], voxel_size_nm=31.3)
    _expect_error(release, tmp_path / "o", r"SIM_gt\.mrc: GT 300x300 and raw 192x192 .*1:2")
    shutil.copy(release / "Cell_002" / "SIM_gt.mrc", gt)
    level = release / "Cell_006" / "RawSIMData_level_01.mrc"
    write_mrc(level, read_mrc(level).data[:8], voxel_size_nm=62.6)
    _expect_error(release, tmp_path / "o", r"Cell_006/RawSIMData_level_01\.mrc: 8 frames")


def test_zip_source_gives_the_same_dataset(pristine: Path, tmp_path: Path) -> None:
    archive = _zip(pristine, tmp_path / layout.RELEASE_ARCHIVE)
    before = archive.read_bytes()
    from_zip = build(archive, tmp_path / "z", preset="small", **SMALL)
    from_dir = build(pristine.parent, tmp_path / "d", preset="small", **SMALL)
    assert (from_zip / "manifest.csv").read_bytes() == (from_dir / "manifest.csv").read_bytes()
    assert archive.read_bytes() == before
    assert not list((from_zip).rglob("*.mrc")), "no extracted member may stay behind"


@pytest.mark.parametrize("name", ["../evil.mrc", "/abs/Cell_001/x.mrc", "a\\..\\b.mrc"])
def test_unsafe_zip_is_refused(pristine: Path, tmp_path: Path, name: str) -> None:
    archive = _zip(pristine, tmp_path / "bad.zip", {name: b"x"})
    with pytest.raises(DataError, match=r"bad\.zip: unsafe member name"):
        build(archive, tmp_path / "o", preset="small", **SMALL)
    assert not (tmp_path / "o").exists()
    assert not (tmp_path / "evil.mrc").exists()


def test_truncated_member_in_zip(pristine: Path, tmp_path: Path) -> None:
    archive = tmp_path / "t.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(pristine.rglob("*.mrc")):
            data = file.read_bytes()
            if file.name == "SIM_gt.mrc" and file.parent.name == "Cell_003":
                data = data[:-4]
            zf.writestr(file.relative_to(pristine).as_posix(), data)
    _expect_error(archive, tmp_path / "o", r"t\.zip:Cell_003/SIM_gt\.mrc: truncated MRC")


def test_corrupt_member_in_zip_is_one_line(pristine: Path, tmp_path: Path) -> None:
    """A member whose data fails its CRC (headers and sizes fine) is a DataError, not a
    traceback, found by the up-front check: cells 1-2 are not cut first."""
    archive = _zip(pristine, tmp_path / "c.zip")
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("Microtubules/Cell_003/SIM_gt.mrc")
    raw = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + 5000] ^= 0xFF  # inside the image data, well past the MRC header
    archive.write_bytes(bytes(raw))
    match = r"c\.zip:Microtubules/Cell_003/SIM_gt\.mrc: corrupt member"
    _expect_error(archive, tmp_path / "o", match)


def test_cli_reports_one_line(release: Path, tmp_path: Path, capsys) -> None:
    (release / "Cell_005" / "SIM_gt.mrc").unlink()
    out = tmp_path / "o"
    code = main(["build", "--source", str(release), "--out", str(out), "--preset", "small"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert err.startswith("biosr: error: ") and "Cell_005/SIM_gt.mrc: file not found" in err
    assert main(["build", "--source", str(release), "--out", str(out), "--test-cells", "x"]) == 1
    assert "x: not a cell list" in capsys.readouterr().err


def test_options_are_checked() -> None:
    assert parse_cells("6-35") == tuple(range(6, 36))
    assert parse_cells("1,3, 5-6") == (1, 3, 5, 6)
    for bad in ("3-1", "0", "a", "1,1"):
        with pytest.raises(DataError):
            parse_cells(bad)
    with pytest.raises(BiosrError, match="cell 5 is in both"):
        build("/nonexistent", "/nonexistent", test_cells="5", validate_cells="1-5")
    with pytest.raises(BiosrError, match="unknown build option"):
        build("/nonexistent", "/nonexistent", crops=3)
    with pytest.raises(BiosrError, match="unknown preset"):
        build("/nonexistent", "/nonexistent", preset="huge")


def test_crop_pair_rotation_geometry() -> None:
    rng = np.random.default_rng(0)
    gt = ndimage.gaussian_filter(rng.random((96, 96)), 2).astype(np.float32)
    wf = protocol.bin2(gt)
    corner, patch = (12, 10), 16
    wf_p, gt_p = protocol.crop_pair(wf, gt, corner, patch, 0.0)
    np.testing.assert_array_equal(wf_p, wf[12:28, 10:26])
    np.testing.assert_array_equal(protocol.bin2(gt_p), wf_p)
    # 90 degrees is exact on the pixel grid: the same as rotating the plain crop
    wf_r, gt_r = protocol.crop_pair(wf, gt, corner, patch, 90.0)
    np.testing.assert_allclose(wf_r, np.rot90(wf_p), atol=1e-5)
    np.testing.assert_allclose(gt_r, np.rot90(gt_p), atol=1e-5)
    # any angle: binning the rotated GT matches the rotated WF (both rotate the same field)
    wf_a, gt_a = protocol.crop_pair(wf, gt, corner, patch, 37.0)
    assert np.corrcoef(protocol.bin2(gt_a).ravel(), wf_a.ravel())[0, 1] > 0.99


def test_mask_normalise_and_flip() -> None:
    img = np.zeros((200, 200))
    img[100, 20:180] = 1.0  # one bright filament
    img[28:180:16, 20:180] = 0.004  # faint ones, below the first threshold
    strict = protocol.foreground_mask(img, min_pixels=10)
    assert strict[100, 100] and not strict[44, 100] and strict.sum() < 1000
    mask = protocol.foreground_mask(img, min_pixels=1000)  # threshold x0.8 until 1000 pass
    assert mask.sum() >= 1000 and mask[44, 100] and not mask[36, 100]
    centres = protocol.valid_centres(strict, 96)
    assert len(centres) and ((centres >= 96) & (centres <= 104)).all()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(protocol.normalize(x), x / 5)
    assert protocol.normalize(np.ones((2, 2))).max() == 0.0
    pct = protocol.normalize(x, "percentile", percentiles=(0.0, 50.0))
    assert pct.max() == 1.0 and pct.dtype == np.float32
    np.testing.assert_array_equal(protocol.flip(x, 3), x[::-1, ::-1])
    np.testing.assert_array_equal(protocol.flip(x, 1), x[::-1])


def test_real_raw_sim_stack(real_mrc: Path, tmp_path: Path) -> None:
    stack = read_mrc(real_mrc, modes=(6,))
    assert stack.data.shape == (9, 256, 256) and stack.data.dtype == np.uint16
    assert stack.voxel_size_nm == pytest.approx(62.6)
    wf = protocol.widefield(stack.data)
    _, median, hi = np.percentile(wf, [1, 50, 99])
    assert (hi - median) / median > 0.2  # bright filaments over the background
    ridges = wf - ndimage.gaussian_filter(wf, 5)
    assert np.percentile(ridges, 99) > 1.0 * wf.std()
    # and the builder's header check accepts the real dialect as a raw level
    cell = tmp_path / "Cell_001"
    cell.mkdir()
    for lv in layout.LEVELS:
        shutil.copy(real_mrc, cell / layout.RAW_LEVEL_FILE.format(level=lv))
    gt = np.repeat(np.repeat(wf, 2, axis=0), 2, axis=1)
    write_mrc(cell / layout.SIM_GT_FILE, gt, voxel_size_nm=31.3)
    assert open_source(tmp_path, (1,)).cells[1]["level_01"][1] == (6, 9, 256, 256)
