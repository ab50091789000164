"""TIFF and MRC I/O: values, metadata, atomicity, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile

from biosr.errors import DataError
from biosr.io.atomic import atomic_path, is_part
from biosr.io.mrc import read_header, read_mrc, write_mrc
from biosr.io.tiff import read_pixel_size_nm, read_tiff, write_tiff


def test_tiff_round_trip_keeps_values_and_pixel_size(tmp_path):
    image = np.random.default_rng(1).random((128, 128), dtype=np.float32)
    path = write_tiff(tmp_path / "a.tif", image, pixel_size_nm=62.6)
    np.testing.assert_array_equal(read_tiff(path), image)
    assert read_pixel_size_nm(path) == pytest.approx(62.6, rel=1e-6)
    with tifffile.TiffFile(path) as tif:  # what ImageJ / Fiji read
        assert tif.imagej_metadata["unit"] == "um"
    assert os.listdir(tmp_path) == ["a.tif"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"<html>not found</html>", "not a TIFF"),
        ("truncate", "truncated TIFF"),
    ],
)
def test_read_tiff_bad_files_name_path_and_reason(tmp_path, content, reason):
    path = tmp_path / "bad.tif"
    if content == "truncate":
        write_tiff(path, np.ones((128, 128), np.float32))
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(DataError, match=reason) as err:
        read_tiff(path)
    assert str(err.value).startswith(f"{path}: ")


def test_read_tiff_checks_shape_dtype_and_finite(tmp_path):
    write_tiff(tmp_path / "f64.tif", np.zeros((128, 128)))
    with pytest.raises(DataError, match="wrong dtype float64"):
        read_tiff(tmp_path / "f64.tif")
    write_tiff(tmp_path / "small.tif", np.zeros((64, 128), np.float32))
    with pytest.raises(DataError, match=r"wrong shape \(64, 128\)"):
        read_tiff(tmp_path / "small.tif", shape=(128, 128))
    bad = np.zeros((8, 8), np.float32)
    bad[0, 0], bad[1, 1] = np.nan, np.inf
    write_tiff(tmp_path / "nan.tif", bad)
    with pytest.raises(DataError, match="1 NaN, 1 inf"):
        read_tiff(tmp_path / "nan.tif")
    with pytest.raises(DataError, match="file not found"):
        read_tiff(tmp_path / "missing.tif")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_killed_writer_leaves_no_file_under_the_final_name(tmp_path):
    """SIGKILL in the middle of write_tiff: the final name never appears."""
    target = tmp_path / "big.tif"
    script = textwrap.dedent(
        f"""
        import sys, time, numpy as np, tifffile
        from biosr.io import tiff
        real = tifffile.imwrite
        def slow(path, data, **kw):
            with open(path, "wb") as fh:
                fh.write(b"II*\\x00" + b"\\x00" * 1000)   # a first chunk, then stall
                fh.flush()
                print("writing", flush=True)
                time.sleep(60)
        tiff.tifffile.imwrite = slow
        tiff.write_tiff({str(target)!r}, np.zeros((512, 512), np.float32))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert not target.exists()
    leftovers = os.listdir(tmp_path)
    assert len(leftovers) == 1 and is_part(leftovers[0])
    # and a real write afterwards succeeds and is whole
    write_tiff(target, np.ones((16, 16), np.float32))
    assert read_tiff(target).sum() == 256


def test_real_biosr_mrc_reads_as_nine_frames(real_mrc):
    stack = read_mrc(real_mrc, modes=(6,))
    assert stack.data.shape == (9, 256, 256)
    assert stack.data.dtype == np.uint16
    assert stack.voxel_size_nm == pytest.approx(62.6)
    header = read_header(real_mrc)
    assert bytes(header.map).strip(b"\x00") == b"" and int(header.nsymbt) == 0  # no "MAP " id


def test_mrc_round_trip_in_biosr_dialect(tmp_path, real_mrc):
    stack = read_mrc(real_mrc)
    out = write_mrc(tmp_path / "copy.mrc", stack.data, voxel_size_nm=62.6)
    again = read_mrc(out, modes=(6,))
    np.testing.assert_array_equal(again.data, stack.data)
    assert again.voxel_size_nm == pytest.approx(62.6)
    # the structural header words (shape, mode, sampling, cell, axes) equal BioSR's own
    ours, theirs = read_header(out), read_header(real_mrc)
    for name in ("nx", "ny", "nz", "mode", "mx", "my", "mz", "cella", "cellb", "mapc", "map"):
        assert ours[name].tobytes() == theirs[name].tobytes(), name
    assert bytes(ours.machst).strip(b"\x00") == b""


def test_mrc_float32_and_errors(tmp_path):
    gt = np.random.default_rng(0).random((1, 32, 32), dtype=np.float32)
    path = write_mrc(tmp_path / "SIM_gt.mrc", gt, voxel_size_nm=31.3)
    got = read_mrc(path, modes=(2,))
    np.testing.assert_array_equal(got.data, gt)
    assert got.voxel_size_nm == pytest.approx(31.3)
    with pytest.raises(DataError, match="unexpected MRC mode 2"):
        read_mrc(path, modes=(6,))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated MRC"):
        read_mrc(path)
    (tmp_path / "tiny.mrc").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match="shorter than its header"):
        read_mrc(tmp_path / "tiny.mrc")
    with pytest.raises(DataError, match="file not found"):
        read_mrc(tmp_path / "none.mrc")
    with pytest.raises(ValueError, match="uint16 or float32"):
        write_mrc(tmp_path / "x.mrc", np.zeros((2, 2), np.int64), voxel_size_nm=1)


def test_read_pixel_size_nm_honours_the_resolution_unit(tmp_path):
    """No resolution (tifffile's 1 px/unit, unit NONE) is None; cm and inch are converted."""
    image = np.zeros((4, 4), np.float32)
    tifffile.imwrite(tmp_path / "plain.tif", image)  # XResolution 1/1, ResolutionUnit NONE
    assert read_pixel_size_nm(tmp_path / "plain.tif") is None
    write_tiff(tmp_path / "ij.tif", image)  # ImageJ file without a unit
    assert read_pixel_size_nm(tmp_path / "ij.tif") is None
    tifffile.imwrite(tmp_path / "cm.tif", image, resolution=(1e5, 1e5), resolutionunit="CENTIMETER")
    assert read_pixel_size_nm(tmp_path / "cm.tif") == pytest.approx(100.0)  # 1e5 px/cm
    tifffile.imwrite(tmp_path / "in.tif", image, resolution=(254000, 254000), resolutionunit="INCH")
    assert read_pixel_size_nm(tmp_path / "in.tif") == pytest.approx(100.0)  # 254000 px/inch
    tifffile.imwrite(tmp_path / "none.tif", image, resolution=(10, 10), resolutionunit="NONE")
    assert read_pixel_size_nm(tmp_path / "none.tif") is None
    tifffile.imwrite(
        tmp_path / "nm.tif", image, imagej=True, resolution=(0.02, 0.02), metadata={"unit": "nm"}
    )
    assert read_pixel_size_nm(tmp_path / "nm.tif") == pytest.approx(50.0)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_pixel_size_round_trips_for_imagej_and_plain_tiffs(tmp_path, dtype):
    path = write_tiff(tmp_path / "a.tif", np.zeros((8, 8), dtype), pixel_size_nm=31.3)
    assert read_pixel_size_nm(path) == pytest.approx(31.3, rel=1e-6)
