"""biosr verify: a good copy passes; each kind of damage is named with its path and reason."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from biosr import layout
from biosr.cli import main
from biosr.dataset.manifest import card_base, file_row, write_card, write_manifest
from biosr.dataset.verify import format_report, verify
from biosr.errors import BiosrError, DataError, UnreachableError
from biosr.io.tiff import write_tiff
from conftest import make_dataset


def _reasons(report):
    return {(f.path, f.reason) for f in report.findings}


def _write_manifest(base):
    """A manifest of every file of a copy, as the simulator and builder write one."""
    rows = {
        r["path"]: r
        for split in layout.SPLITS
        for p in layout.pairs(base, split)
        for r in (file_row(base, p, "wf"), file_row(base, p, "gt"))
    }
    write_manifest(base, rows.values())


def test_good_copy_passes_with_both_root_forms(tiny_dataset):
    for root in (tiny_dataset, tiny_dataset / "BioSR" / "Microtubules"):
        report = verify(root, deep=True)
        assert report.ok, format_report(report)
        assert report.files == 3 * 2 + 2 * 2 + 2 * 10  # training, validate, test (9 levels + gt)
        assert report.decoded == report.files


def test_gt_at_twice_the_size_is_inferred_and_accepted(tmp_path):
    make_dataset(tmp_path, gt_scale=2)
    report = verify(tmp_path, deep=True)
    assert report.ok and report.gt_scale == 2


def test_missing_split_folder_and_level(tiny_dataset):
    base = tiny_dataset / "BioSR" / "Microtubules"
    shutil.rmtree(base / "validate_gt")
    shutil.rmtree(base / "test_wf" / "level_07")
    found = _reasons(verify(tiny_dataset))
    assert (str(base / "validate_gt"), "missing folder") in found
    assert (str(base / "test_wf" / "level_07"), "missing folder") in found


def test_partial_copy_is_fine_when_only_some_splits_are_required(tiny_dataset):
    base = tiny_dataset / "BioSR" / "Microtubules"
    for d in ("training_wf", "training_gt", "validate_wf", "validate_gt"):
        shutil.rmtree(base / d)
    assert not verify(tiny_dataset).ok
    assert verify(tiny_dataset, splits=["test"]).ok


def test_extra_misnamed_and_unpaired_files(tiny_dataset):
    base = tiny_dataset / "BioSR" / "Microtubules"
    (base / "training_wf" / "00000001.tif").rename(base / "training_wf" / "1.tif")
    (base / "test_gt" / "002.tif").unlink()
    (base / "notes.txt").write_text("hi")
    (base / "test_wf" / "level_10").mkdir()
    found = _reasons(verify(tiny_dataset))
    assert (
        str(base / "training_wf" / "1.tif"),
        "unexpected file name (expected NNNNNNNN.tif)",
    ) in found
    gt1 = base / "training_gt" / "00000001.tif"
    assert (str(gt1), f"no matching input {base / 'training_wf' / '00000001.tif'}") in found
    for level in layout.LEVELS:  # the lost test target breaks the pair at every level
        wf = base / "test_wf" / f"level_{level:02d}" / "002.tif"
        assert (str(wf), f"no matching target {base / 'test_gt' / '002.tif'}") in found
    assert (str(base / "notes.txt"), "unexpected entry in the dataset folder") in found
    level10 = str(base / "test_wf" / "level_10")
    assert (level10, "unexpected entry (expected level_01 .. level_09)") in found


def test_gap_in_indices_is_reported(tiny_dataset):
    base = tiny_dataset / "BioSR" / "Microtubules"
    (base / "training_wf" / "00000002.tif").unlink()
    (base / "training_gt" / "00000002.tif").unlink()
    found = _reasons(verify(tiny_dataset))
    assert any(p == str(base / "training_wf" / "00000002.tif") and "gaps" in r for p, r in found)


@pytest.mark.parametrize("deep", [False, True])
def test_each_damaged_file_gets_its_own_reason(tmp_path, deep):
    base = make_dataset(tmp_path, {"training": 40, "validate": 2, "test": 2})
    wf = base / "training_wf"
    (wf / "00000002.tif").write_bytes(b"")
    (wf / "00000003.tif").write_bytes(b"<!DOCTYPE html><html>404</html>")
    (wf / "00000004.tif").write_bytes((wf / "00000004.tif").read_bytes()[:40_000])
    write_tiff(wf / "00000005.tif", np.zeros((128, 128), np.float64))
    write_tiff(wf / "00000006.tif", np.zeros((100, 128), np.float32))
    nan = np.zeros((128, 128), np.float32)
    nan[5, 5] = np.nan
    write_tiff(wf / "00000007.tif", nan)
    inf = np.zeros((128, 128), np.float32)
    inf[0, 0] = np.inf
    write_tiff(wf / "00000008.tif", inf)
    (wf / ".00000009.tif.1234.part").write_bytes(b"II*\x00")
    # sample=1: the odd-sized files are decoded whatever the sample; NaN/inf need --deep
    report = verify(tmp_path, sample=1, deep=deep)
    found = {p.rsplit("/", 1)[-1]: r for p, r in _reasons(report)}
    assert found["00000002.tif"] == "empty file (0 bytes)"
    assert found["00000003.tif"] == "not a TIFF file (bad header)"
    assert found["00000004.tif"].startswith("truncated TIFF (40,000 bytes")
    assert found["00000005.tif"] == "wrong dtype float64, expected float32"
    assert found["00000006.tif"] == "wrong shape (100, 128), expected (128, 128)"
    assert found[".00000009.tif.1234.part"].startswith("leftover temporary file")
    if deep:
        assert found["00000007.tif"] == "non-finite values (1 NaN, 0 inf)"
        assert found["00000008.tif"] == "non-finite values (0 NaN, 1 inf)"
    assert not report.ok


def test_unreadable_file(tiny_dataset):
    base = tiny_dataset / "BioSR" / "Microtubules"
    target = base / "validate_gt" / "00000001.tif"
    target.unlink()
    target.mkdir()  # a folder where a file should be
    found = _reasons(verify(tiny_dataset))
    assert (str(target), "unexpected folder (expected NNNNNNNN.tif)") in found


def test_expect_published_reports_expected_and_found_counts(tiny_dataset):
    report = verify(tiny_dataset, expect="published")
    base = tiny_dataset / "BioSR" / "Microtubules"
    found = _reasons(report)
    assert (str(base / "training_wf"), "3 inputs, expected 41,040 (published)") in found
    assert (str(base / "validate_wf"), "2 inputs, expected 2,160 (published)") in found
    assert (str(base / "test_wf" / "level_01"), "2 inputs, expected 150 (published)") in found
    assert (str(base / "test_gt"), "2 targets, expected 150 (published)") in found


def test_inconsistent_test_level_is_reported(tiny_dataset):
    base = tiny_dataset / "BioSR" / "Microtubules"
    write_tiff(base / "test_wf" / "level_03" / "003.tif", np.zeros((128, 128), np.float32))
    found = _reasons(verify(tiny_dataset))
    assert any(p == str(base / "test_wf" / "level_03") and "inconsistent" in r for p, r in found)


def test_deep_checks_sha256_against_the_manifest(tiny_dataset):
    base = tiny_dataset / "BioSR" / "Microtubules"
    _write_manifest(base)
    write_card(base, card_base(source="test", gt_scale=1))
    assert verify(tiny_dataset, deep=True).ok
    # same shape and dtype, other values: only the checksum can tell
    victim = base / "validate_wf" / "00000002.tif"
    write_tiff(victim, np.zeros((128, 128), np.float32))
    extra = base / "validate_wf" / "00000003.tif"
    write_tiff(extra, np.zeros((128, 128), np.float32))
    write_tiff(base / "validate_gt" / "00000003.tif", np.zeros((128, 128), np.float32))
    (base / "training_gt" / "00000001.tif").unlink()
    report = verify(tiny_dataset, deep=True)
    found = _reasons(report)
    assert (str(victim), "sha256 differs from the manifest") in found
    assert (str(extra), "not listed in the manifest") in found
    gone = base / "training_gt" / "00000001.tif"
    assert (str(gone), "listed in the manifest but missing") in found
    assert report.hashed > 0
    assert verify(tiny_dataset).findings != report.findings  # shallow mode does not hash


def test_cli_verify_exit_codes_and_output(tiny_dataset, capsys):
    assert main(["verify", str(tiny_dataset)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out.splitlines()[-1] and "training" in out
    base = tiny_dataset / "BioSR" / "Microtubules"
    (base / "training_wf" / "00000001.tif").write_bytes(b"")
    assert main(["verify", str(tiny_dataset), "--expect", "published"]) == 1
    out = capsys.readouterr().out
    assert f"{base / 'training_wf' / '00000001.tif'}: empty file (0 bytes)" in out
    assert "3 inputs, expected 41,040 (published)" in out
    assert out.splitlines()[-1].startswith("FAILED")


def test_cli_verify_missing_root_is_one_line(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"biosr: error: {tmp_path / 'nowhere'}: no BioSR")


def test_partial_copy_with_full_manifest_passes_deep_for_its_splits(tiny_dataset):
    base = tiny_dataset / "BioSR" / "Microtubules"
    _write_manifest(base)
    for d in ("training_wf", "training_gt"):
        shutil.rmtree(base / d)
    assert verify(tiny_dataset, splits=["validate", "test"], deep=True).ok
    found = _reasons(verify(tiny_dataset, deep=True))  # all splits required: training is gone
    assert (str(base / "training_wf"), "missing folder") in found
    missing = str(base / "training_gt" / "00000001.tif")
    assert (missing, "listed in the manifest but missing") in found


def test_cli_verify_split_option_accepts_a_partial_copy(tiny_dataset, capsys):
    base = tiny_dataset / "BioSR" / "Microtubules"
    shutil.rmtree(base / "training_wf")
    shutil.rmtree(base / "training_gt")
    assert main(["verify", str(tiny_dataset)]) == 1
    assert f"{base / 'training_wf'}: missing folder" in capsys.readouterr().out
    assert main(["verify", str(tiny_dataset), "--split", "validate", "--split", "test"]) == 0


def test_bad_arguments_are_data_errors_raised_where_checked(tiny_dataset):
    with pytest.raises(DataError, match="expect must be one of consistent, published"):
        verify(tiny_dataset, expect="exact")
    with pytest.raises(DataError, match="unknown split 'train'; valid splits"):
        verify(tiny_dataset, splits=["train"])
    for bad in (0, 10, None, "3", 2.5, True):
        with pytest.raises(DataError, match=r"valid levels: 1\.\.9"):
            layout.check_level(bad, error=DataError)
    with pytest.raises(ValueError, match="valid levels") as info:
        layout.check_level(10)  # a programming error stays a plain ValueError
    assert not isinstance(info.value, DataError)
    assert layout.split_levels("test", [9, 1], error=DataError) == (9, 1)
    with pytest.raises(DataError, match="has no levels"):
        layout.split_levels("training", 3, error=DataError)
    assert issubclass(UnreachableError, BiosrError)
