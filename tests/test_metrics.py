"""Metrics agree with scikit-image, behave at the extremes, and resolution recovers known FWHMs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import fftconvolve
from skimage.metrics import (
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

from biosr.evaluate import metrics, scoring
from biosr.optics import AIRY_FWHM, psf_fwhm_nm, widefield_psf


def _pairs(n: int = 3, size: int = 64):
    rng = np.random.default_rng(1)
    for _ in range(n):
        gt = rng.random((size, size))
        yield gt, np.clip(gt + 0.2 * rng.standard_normal((size, size)), 0, 1)


def test_psnr_ssim_nrmse_match_scikit_image():
    for gt, pred in _pairs():
        assert metrics.psnr(gt, pred) == pytest.approx(
            peak_signal_noise_ratio(gt, pred, data_range=1), abs=1e-6
        )
        assert metrics.ssim(gt, pred) == pytest.approx(
            structural_similarity(gt, pred, data_range=1), abs=1e-6
        )
        assert metrics.nrmse(gt, pred) == pytest.approx(normalized_root_mse(gt, pred), abs=1e-6)


def test_ms_ssim_one_scale_is_gaussian_ssim_of_scikit_image():
    for gt, pred in _pairs():
        ref = structural_similarity(
            gt, pred, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert metrics.ms_ssim(gt, pred, scales=1) == pytest.approx(ref, abs=1e-6)


def test_gt_against_itself_is_perfect():
    gt = np.random.default_rng(2).random((128, 128))
    assert metrics.ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ms_ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert metrics.nrmse(gt, gt) == 0.0
    assert math.isinf(metrics.psnr(gt, gt))


def test_ms_ssim_falls_with_noise_and_refuses_too_small_images():
    rng = np.random.default_rng(3)
    gt = fftconvolve(rng.random((128, 128)), np.ones((5, 5)) / 25, mode="same")
    values = [
        metrics.ms_ssim(gt, gt + s * rng.standard_normal(gt.shape)) for s in (0.01, 0.05, 0.2)
    ]
    assert values[0] > values[1] > values[2] > 0
    with pytest.raises(ValueError, match="at least 88 px"):
        metrics.ms_ssim(gt[:64, :64], gt[:64, :64])


def test_data_range_is_explicit_and_matters():
    gt, pred = next(_pairs())
    assert metrics.ssim(gt, pred, data_range=1) != pytest.approx(
        metrics.ssim(gt, pred, data_range=2), abs=1e-3
    )


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one shape"):
        metrics.psnr(np.zeros((8, 8)), np.zeros((8, 9)))


# --------------------------------------------------------------------------- #
# Resolution
# --------------------------------------------------------------------------- #

PIXEL_NM = 31.3


def _filaments(rng: np.random.Generator, size: int) -> np.ndarray:
    img = np.zeros((size, size))
    t = np.linspace(-size, size, 8 * size)
    for _ in range(12):
        x0, y0 = rng.uniform(0, size, 2)
        theta = rng.uniform(0, np.pi)
        xs = (x0 + t * np.cos(theta)).astype(int)
        ys = (y0 + t * np.sin(theta)).astype(int)
        ok = (xs >= 0) & (xs < size) & (ys >= 0) & (ys < size)
        np.add.at(img, (ys[ok], xs[ok]), 1.0)
    return img


def _blurred(fwhm_nm: float, seed: int, photons: float = 1000.0) -> np.ndarray:
    """Filaments blurred by an Airy PSF of FWHM `fwhm_nm`, Poisson noise at `photons` peak."""
    rng = np.random.default_rng(seed)
    na = 1.3
    wavelength = fwhm_nm * na / AIRY_FWHM
    assert psf_fwhm_nm(wavelength, na) == pytest.approx(fwhm_nm)
    pad = 32
    clean = fftconvolve(
        _filaments(rng, 128 + 2 * pad),
        widefield_psf(PIXEL_NM, wavelength_nm=wavelength, na=na),
        mode="same",
    )[pad:-pad, pad:-pad]
    clean = np.clip(clean, 0, None) / clean.max() * photons
    return rng.poisson(clean + 2.0).astype(float)


def test_resolution_recovers_known_fwhm_ordering_and_value():
    """Decorrelation resolution ``2 px / k_c`` read directly as a FWHM, within 15 %.

    For a band-limited (Airy) image the cut-off ``2 NA / lambda`` gives
    ``2 px / k_c = lambda / (2 NA) = FWHM / 1.029``; at finite SNR ``k_c`` sits
    a little below the cut-off, so the estimate lands just above the FWHM.
    """
    fwhms = (200.0, 300.0, 400.0)
    estimates = [
        np.mean([metrics.resolution_nm(_blurred(f, seed), PIXEL_NM) for seed in range(3)])
        for f in fwhms
    ]
    assert estimates[0] < estimates[1] < estimates[2]
    for fwhm, est in zip(fwhms, estimates, strict=True):
        assert abs(est / fwhm - 1) < 0.15, (fwhm, est)


def test_resolution_is_nan_without_structure_and_never_below_two_pixels():
    assert math.isnan(metrics.resolution_nm(np.ones((64, 64)), 62.6))
    # White noise decorrelates at every radius: no peak, no resolution.
    noise = np.random.default_rng(4).random((128, 128))
    assert math.isnan(metrics.resolution_nm(noise, 62.6))
    sharp = _blurred(60.0, 0, photons=1e5)  # finer than the grid can show
    assert 2 * PIXEL_NM <= metrics.resolution_nm(sharp, PIXEL_NM) < 100


def test_resolution_is_invariant_to_scale_and_offset():
    img = _blurred(250.0, 7)
    assert metrics.resolution_nm(3 * img + 10, PIXEL_NM) == metrics.resolution_nm(img, PIXEL_NM)


# --------------------------------------------------------------------------- #
# Protocols
# --------------------------------------------------------------------------- #


def _smooth(seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return fftconvolve(rng.random((128, 128)), np.ones((7, 7)) / 49, mode="same")


def test_dlsr_minmax_makes_an_affinely_scaled_prediction_perfect():
    gt = _smooth()
    pred = 2.5 * gt + 7.0
    assert metrics.psnr(gt, pred) < 0  # scored raw, the scale is a disaster
    s = scoring.score_pair(gt, pred, protocol="dlsr", pixel_size_nm=62.6)
    assert s["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert s["nrmse"] == pytest.approx(0.0, abs=1e-7)
    gt_n, pred_n = scoring.normalize_pair(gt, pred, "dlsr")
    assert (gt_n.min(), gt_n.max(), pred_n.min(), pred_n.max()) == (0, 1, 0, 1)


def test_care_percentiles_and_affine_fit_ignore_a_hot_gt_pixel():
    gt = _smooth()
    pred = 3.0 * gt + 1.0  # a prediction that is right up to scale
    gt_hot = gt.copy()
    gt_hot[10, 10] = 3.0 * gt.max()  # one hot pixel squashes the min-max GT
    dlsr = scoring.score_pair(gt_hot, pred, protocol="dlsr", pixel_size_nm=62.6)
    care = scoring.score_pair(gt_hot, pred, protocol="care", pixel_size_nm=62.6)
    assert care["psnr"] > 25 > 10 > dlsr["psnr"]
    assert care["ssim"] > 0.99 > 0.5 > dlsr["ssim"]
    # The care normalisation by hand: percentiles, then a least-squares line.
    lo, hi = np.percentile(gt_hot, [0.1, 99.9])
    gt_n = (gt_hot - lo) / (hi - lo)
    a, b = np.polyfit(pred.ravel(), gt_n.ravel(), 1)
    ref_gt, ref_pred = scoring.normalize_pair(gt_hot, pred, "care")
    np.testing.assert_allclose(ref_gt, gt_n, atol=1e-12)
    np.testing.assert_allclose(ref_pred, a * pred + b, atol=1e-9)


def test_care_affine_fit_shrugs_off_a_hot_prediction_pixel():
    gt = _smooth()
    pred = 3.0 * gt + 1.0
    pred[20, 20] = 3.0 * pred.max()  # min-max of the prediction is ruined by one pixel
    dlsr = scoring.score_pair(gt, pred, protocol="dlsr", pixel_size_nm=62.6)
    care = scoring.score_pair(gt, pred, protocol="care", pixel_size_nm=62.6)
    assert care["psnr"] > 25 > 10 > dlsr["psnr"]
    assert care["nrmse"] < 0.1 < 0.5 < dlsr["nrmse"]


def test_unknown_protocol_is_named():
    with pytest.raises(ValueError, match="unknown protocol 'x'; valid: dlsr, care"):
        scoring.normalize_pair(np.zeros((4, 4)), np.zeros((4, 4)), "x")
