"""Baselines: wf/bicubic geometry, Richardson-Lucy sharpening, and physics on a simulated split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

from biosr import layout
from biosr.cli import main
from biosr.errors import BiosrError
from biosr.evaluate import baselines
from biosr.evaluate.evaluation import evaluate
from biosr.io.tiff import read_pixel_size_nm, read_tiff
from biosr.optics import widefield_psf
from conftest import make_dataset


def test_wf_and_bicubic_on_the_same_grid_are_the_input(tmp_path):
    base = make_dataset(tmp_path / "d", {"test": 1})
    for name in ("wf", "bicubic"):
        out = baselines.run_baseline(name, tmp_path / "d", tmp_path / name, levels=[2, 9])
        names = sorted(p.name for p in out.iterdir())
        assert names == [".biosr_owner.json", "baseline.json", "level_02", "level_09"]
        for lev in (2, 9):
            pred = read_tiff(out / layout.level_dir(lev) / "001.tif")
            np.testing.assert_array_equal(pred, read_tiff(layout.pair(base, "test", 1, lev).wf))
            assert read_pixel_size_nm(out / layout.level_dir(lev) / "001.tif") == pytest.approx(
                62.6
            )


def test_wf_replicates_and_bicubic_interpolates_onto_a_2x_gt(tmp_path):
    base = make_dataset(tmp_path / "d", {"test": 1}, gt_scale=2)
    wf_in = read_tiff(layout.pair(base, "test", 1, 9).wf)
    wf = read_tiff(
        baselines.run_baseline("wf", base, tmp_path / "wf", levels=[9]) / "level_09/001.tif"
    )
    bic = read_tiff(
        baselines.run_baseline("bicubic", base, tmp_path / "bic", levels=[9]) / "level_09/001.tif"
    )
    assert wf.shape == bic.shape == (256, 256)
    np.testing.assert_array_equal(wf[::2, ::2], wf_in)
    np.testing.assert_array_equal(wf[1::2, 1::2], wf_in)
    assert not np.array_equal(bic, wf)
    assert abs(float(bic.mean()) - float(wf_in.mean())) < 0.01
    info = json.loads((tmp_path / "wf" / "baseline.json").read_text())
    assert info["pixel_size_nm"] == pytest.approx(31.3) and info["gt_shape"] == [256, 256]


def test_richardson_lucy_sharpens_a_blurred_point_and_depends_on_iterations():
    psf = widefield_psf(62.6)
    point = np.zeros((64, 64))
    point[32, 32] = 1.0
    blurred = fftconvolve(point, psf, mode="same") + 1e-3
    few = baselines.predict_one("rl", blurred, (64, 64), iterations=5)
    many = baselines.predict_one("rl", blurred, (64, 64), iterations=40)
    assert few.dtype == np.float32 and few.shape == (64, 64)
    assert blurred.max() < few.max() < many.max()
    assert np.unravel_index(np.argmax(many), many.shape) == (32, 32)
    again = baselines.predict_one("rl", blurred, (64, 64), iterations=40)
    np.testing.assert_array_equal(many, again)


def test_bad_requests_are_named(tmp_path):
    make_dataset(tmp_path / "d", {"test": 1})
    with pytest.raises(BiosrError, match="unknown baseline 'dfcan'; valid: wf, bicubic, rl"):
        baselines.run_baseline("dfcan", tmp_path / "d", tmp_path / "x")
    baselines.run_baseline("wf", tmp_path / "d", tmp_path / "wf", levels=[1])
    with pytest.raises(BiosrError, match="already holds predictions; pass --overwrite"):
        baselines.run_baseline("wf", tmp_path / "d", tmp_path / "wf", levels=[1])
    with pytest.raises(BiosrError, match="iterations must be at least 1"):
        baselines.run_baseline("rl", tmp_path / "d", tmp_path / "rl", iterations=0)


def test_cli_baseline_writes_rl_with_its_iterations(tmp_path, capsys):
    make_dataset(tmp_path / "d", {"test": 1})
    out = tmp_path / "rl"
    argv = ["baseline", "rl", "--data", str(tmp_path / "d"), "--out", str(out)]
    assert main([*argv, "--levels", "9", "--iterations", "3"]) == 0
    assert json.loads((out / "baseline.json").read_text())["iterations"] == 3
    assert (out / "level_09" / "001.tif").is_file()
    assert main([*argv, "--levels", "9"]) == 1
    assert "pass --overwrite" in capsys.readouterr().err


def _simulated_test_split(root: Path) -> Path:
    """A small simulated test split."""
    from biosr.simulate import simulate_patches

    return simulate_patches(root, preset="tiny", seed=0)


def test_richardson_lucy_beats_widefield_at_level_9_on_simulated_data(tmp_path):
    data = _simulated_test_split(tmp_path)
    preds = {n: baselines.run_baseline(n, data, tmp_path / n, levels=[9]) for n in ("wf", "rl")}
    res = evaluate(data, preds, None, levels=[9])
    assert res.ok
    wf, rl = res.summary["wf"][9], res.summary["rl"][9]
    assert wf["complete"] and rl["complete"]
    assert rl["psnr"]["mean"] > wf["psnr"]["mean"] + 3
    assert rl["resolution_nm"]["mean"] < 0.8 * wf["resolution_nm"]["mean"]
