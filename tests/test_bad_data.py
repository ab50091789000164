"""Bad data is refused where it is read (finite, not constant, 2-D, one page), in one line that
names the file and says why: NaN or constant GT and raw stacks in a release, TIFF stacks and
damaged TIFFs in a dataset, HTML saved as ``.mrc``, a malformed checksum (issue 16)."""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from biosr import layout
from biosr.acquire.download import fetch
from biosr.build.builder import build
from biosr.cli import main
from biosr.dataset.info import dataset_info, format_info
from biosr.dataset.verify import verify
from biosr.errors import BiosrError, DataError
from biosr.io.mrc import read_mrc, write_mrc
from biosr.io.tiff import read_tiff, write_tiff
from build_release import make_release
from conftest import make_dataset
from test_download_http import serve, url_of, zip_dataset

#: One cell per split, one crop: the smallest build that runs every split's code.
TINY = {
    "training_cells": "1",
    "validate_cells": "2",
    "test_cells": "3",
    "training_crops": 1,
    "validate_crops": 1,
    "test_crops": 1,
    "flips": 1,
}
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>...</body></html>\n"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_release(tmp_path_factory.mktemp("release"), cells=3, size=192, seed=4)


@pytest.fixture
def release(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the release that a test may damage."""
    return Path(shutil.copytree(pristine, tmp_path / "src" / "Microtubules"))


def _rewrite(path: Path, change) -> None:
    """Rewrite an MRC file with `change` applied to its data (same mode, same voxel size)."""
    stack = read_mrc(path)
    data = np.array(stack.data)
    change(data)
    write_mrc(path, data, voxel_size_nm=stack.voxel_size_nm)


def _no_nan_patch_and_no_manifest(out: Path) -> None:
    dataset = layout.dataset_dir(out, must_exist=False)
    for tif in dataset.rglob("*.tif"):
        assert np.isfinite(tifffile.imread(tif)).all(), f"{tif}: NaN patch written"
    assert not (dataset / layout.MANIFEST_FILE).exists()
    assert not (dataset / layout.CARD_FILE).exists()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d[0, 100:160, 200:260].fill(np.nan), "3,600 of 147,456 SIM GT pixels are NaN"),
        (lambda d: d.fill(np.nan), "147,456 of 147,456 SIM GT pixels are NaN"),
        (lambda d: d.fill(np.inf), "are NaN or infinite"),
        (lambda d: d.fill(0.0), r"the SIM GT is constant \(0 everywhere\)"),
    ],
    ids=["nan-block", "all-nan", "all-inf", "all-zero"],
)
def test_bad_gt_stops_the_build_naming_the_file(release, tmp_path, change, match):
    gt = release / "Cell_003" / layout.SIM_GT_FILE  # the test cell: cut last
    _rewrite(gt, change)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=match) as err:
        build(release, out, preset="small", **TINY)
    assert str(err.value).startswith(f"{gt}: ")
    assert "leave its cell out" in str(err.value)
    _no_nan_patch_and_no_manifest(out)


def test_constant_raw_stack_stops_the_build(release, tmp_path):
    level = release / "Cell_001" / layout.RAW_LEVEL_FILE.format(level=5)
    _rewrite(level, lambda d: d.fill(100))
    with pytest.raises(DataError, match=r"raw SIM frames are constant \(100 in every pixel\)") as e:
        build(release, tmp_path / "out", preset="small", **TINY)
    assert str(e.value).startswith(f"{level}: ")


def test_bad_gt_in_a_zip_names_the_member(release, tmp_path):
    _rewrite(release / "Cell_002" / layout.SIM_GT_FILE, lambda d: d.fill(np.nan))
    archive = tmp_path / "Microtubules.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for file in sorted(release.rglob("*.mrc")):
            zf.write(file, f"Microtubules/{file.relative_to(release).as_posix()}")
    with pytest.raises(DataError, match="NaN") as err:
        build(archive, tmp_path / "out", preset="small", **TINY)
    assert str(err.value).startswith(f"{archive}:Microtubules/Cell_002/SIM_gt.mrc: ")


def test_cli_build_on_nan_gt_is_one_line_exit_1(release, tmp_path, capsys):
    _rewrite(release / "Cell_002" / layout.SIM_GT_FILE, lambda d: d.fill(np.nan))
    argv = ["build", "--source", str(release), "--out", str(tmp_path / "out"), "--preset", "small"]
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "flips"]
    assert main(argv) == 1
    err = capsys.readouterr().err.replace("\r", "\n").strip()  # after the progress bar:
    line = err.splitlines()[-1]
    assert line.startswith("biosr: error: ") and "Traceback" not in err
    assert "Cell_002/SIM_gt.mrc" in line and "NaN" in line


def test_html_named_mrc_is_not_an_mrc_file(release, tmp_path):
    page = release / "Cell_002" / layout.SIM_GT_FILE
    page.write_bytes(HTML)
    with pytest.raises(
        DataError, match="not an MRC file: it starts with the text '<!DOCTYPE html>"
    ):
        read_mrc(page)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"SIM_gt.mrc: not an MRC file.*HTML page"):
        build(release, out, preset="small", **TINY)
    assert not out.exists(), "a release refused on opening must leave nothing behind"


def test_binary_non_mrc_says_so(tmp_path):
    path = tmp_path / "x.mrc"
    write_tiff(tmp_path / "a.tif", np.zeros((32, 32), np.float32))
    path.write_bytes((tmp_path / "a.tif").read_bytes().ljust(2048, b"\0"))
    with pytest.raises(DataError, match="not an MRC file, or its header is damaged"):
        read_mrc(path)


# --------------------------------------------------------------------------- #
# TIFFs in a dataset copy
# --------------------------------------------------------------------------- #


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data", {"training": 3, "validate": 1, "test": 1})


def test_two_page_tiff_is_found_by_verify_without_a_manifest(dataset):
    stack = dataset / "training_wf" / "00000002.tif"
    tifffile.imwrite(stack, np.zeros((2, 128, 128), np.float32))
    assert not (dataset / layout.MANIFEST_FILE).exists()
    for deep in (True, False):
        report = verify(dataset.parents[1], deep=deep)
        reasons = {f.path: f.reason for f in report.findings}
        assert not report.ok
        assert reasons[str(stack)] == "a stack of 2 pages; expected one 2-D image per file"
    with pytest.raises(DataError, match="a stack of 2 pages"):
        read_tiff(stack)


def _damage_first_ifd(path: Path) -> None:
    """Point the header's first-IFD offset past the end of the file."""
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", len(data) + 100)
    path.write_bytes(bytes(data))


def test_damaged_ifd_gives_the_reason_and_no_stray_warning(dataset, caplog):
    bad = dataset / "training_gt" / "00000001.tif"
    _damage_first_ifd(bad)
    caplog.set_level(logging.WARNING)
    with pytest.raises(DataError, match=r"damaged TIFF: no readable image \(invalid offset"):
        read_tiff(bad)
    report = verify(dataset.parents[1], deep=True)
    (finding,) = [f for f in report.findings if f.path == str(bad)]
    assert finding.reason.startswith("damaged TIFF: no readable image (invalid offset to first")
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]
    # outside biosr's reads, tifffile logs as it always does
    with tifffile.TiffFile(bad) as tif:
        assert len(tif.pages) == 0
    assert [r for r in caplog.records if r.name.startswith("tifffile")]


def test_verify_cli_prints_no_tifffile_warning(dataset, tmp_path):
    _damage_first_ifd(dataset / "validate_wf" / "00000001.tif")
    proc = subprocess.run(
        [sys.executable, "-m", "biosr.cli", "verify", str(dataset.parents[1]), "--deep", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "invalid offset to first page" in proc.stdout
    assert "invalid offset" not in proc.stderr and "Traceback" not in proc.stderr


def test_info_text_shows_the_nan_count(dataset, capsys):
    image = np.random.default_rng(0).random((128, 128), dtype=np.float32)
    image[:6, :5] = np.nan
    write_tiff(dataset / "training_wf" / "00000003.tif", image)
    info = dataset_info(dataset.parents[1])
    text = format_info(info)
    (training,) = [line for line in text.splitlines() if line.startswith("training")]
    assert "30 NaN/inf" in training
    assert "WARNING: 30 NaN/inf values in the sampled images" in text
    assert main(["info", str(dataset.parents[1])]) == 0
    assert "30 NaN/inf" in capsys.readouterr().out


# --------------------------------------------------------------------------- #
# A malformed checksum is refused before the download starts
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("known_hash", ["nothex", "sha256:" + "g" * 64, "md5:abc", "crc9:00"])
def test_malformed_hash_is_refused_before_any_request(tmp_path, known_hash):
    with serve(zip_dataset(tmp_path)) as srv:
        with pytest.raises(BiosrError, match="give 'sha256:HEX' or 'md5:HEX'"):
            fetch(tmp_path / "root", source=url_of(srv, "data.zip"), known_hash=known_hash)
        assert srv.requests == []
    assert not (tmp_path / "root").exists()


# --------------------------------------------------------------------------- #
# A file that is not a checkpoint, given to --resume
# --------------------------------------------------------------------------- #


def test_resume_from_garbage_is_one_line_and_writes_nothing(dataset, tmp_path):
    pytest.importorskip("lightning")
    from biosr.learn.train import train

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    out = tmp_path / "run"
    with pytest.raises(BiosrError, match=r"garbage.ckpt: not a readable checkpoint") as err:
        train(dataset.parents[1], out, model="unet", max_steps=1, resume=garbage)
    assert "\n" not in str(err.value)
    assert not out.exists()
