"""Nonlinear SIM (F-actin_Nonlinear): the saturated pattern's harmonics, 25 frames, the 3x GT."""

from __future__ import annotations

import numpy as np
import pytest

from biosr import layout, optics
from biosr.evaluate.metrics import resolution_nm
from biosr.simulate import calibrate, camera, field, imaging, microscope, truth

NONLINEAR = layout.get_structure("F-actin_Nonlinear")
SIZE = 128


def dft_power(image: np.ndarray, fy: np.ndarray, fx: np.ndarray, pixel_nm: float) -> np.ndarray:
    """Power of the Hann-windowed image at (non-integer) frequencies ``(fy, fx)``, cycles per nm."""
    a = (image - image.mean()) * np.outer(np.hanning(image.shape[0]), np.hanning(image.shape[1]))
    y = (np.arange(image.shape[0]) + 0.5) * pixel_nm
    x = (np.arange(image.shape[1]) + 0.5) * pixel_nm
    ey = np.exp(-2j * np.pi * np.multiply.outer(np.atleast_1d(fy), y))
    ex = np.exp(-2j * np.pi * np.multiply.outer(np.atleast_1d(fx), x))
    return np.abs(((ey @ a) * ex).sum(axis=1)) ** 2


def peak_ratio(image: np.ndarray, freq: float, angle: float, pixel_nm: float) -> float:
    """Power at `freq` along `angle` over the mean power on a ring 4 frequency bins around it."""
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    df = 4.0 / (image.shape[0] * pixel_nm)
    fy = np.concatenate([[0.0], df * np.sin(t)]) + freq * np.sin(angle)
    fx = np.concatenate([[0.0], df * np.cos(t)]) + freq * np.cos(angle)
    power = dft_power(image, fy, fx, pixel_nm)
    return float(power[0] / power[1:].mean())


@pytest.fixture(scope="module")
def cell() -> field.Field:
    """A nonlinear SIM cell with its 25 frames, at the structure's own settings."""
    mic = microscope.for_structure(NONLINEAR)
    seeds = field.cell_seeds(0, 97, 1)
    return field.simulate_field(SIZE, seeds, frames=True, microscope=mic, structure=NONLINEAR)


def test_harmonics_are_the_fourier_series_of_the_saturated_pattern():
    m, s = imaging.MODULATION, imaging.SATURATION
    t = np.linspace(0.0, 2.0 * np.pi, 4096, endpoint=False)
    series = np.fft.rfft(1.0 - np.exp(-s * (1.0 + m * np.cos(t)) / 2.0)) / t.size
    expected = series.real / series.real[0]
    c = imaging.harmonics(m, s)
    assert len(c) >= 3  # the 2nd harmonic, and beyond it the 3rd, are kept
    np.testing.assert_allclose(c, expected[: len(c)], atol=1e-12)
    assert abs(expected[len(c)]) < imaging.HARMONIC_FLOOR <= abs(c[-1])
    assert c[2] < 0 < c[1] and abs(c[2]) > 0.25 * c[1]  # a strong, sign-flipped 2nd harmonic
    # Without saturation the pattern is the linear 1 + m cos.
    assert imaging.harmonics(m).tolist() == [1.0, m / 2.0]


def test_nonlinear_cell_has_25_frames_on_the_3x_grid_and_wf_is_their_mean(cell):
    clean = cell.clean
    assert clean.frames.shape == (NONLINEAR.frames, SIZE, SIZE) == (25, SIZE, SIZE)
    assert clean.gt.shape == (3 * SIZE, 3 * SIZE)
    assert len(clean.pattern.angles) == 5 and len(clean.pattern.phases) == 5
    assert clean.pattern.saturation == imaging.SATURATION
    assert 1.0 / clean.pattern.frequency_per_nm == NONLINEAR.line_spacing_nm
    np.testing.assert_allclose(np.diff(np.rad2deg(clean.pattern.angles)), 36.0)
    wf = imaging.widefield(clean.frames)
    assert np.abs(wf - clean.wf).max() < 1e-9 * clean.wf.max()
    assert np.abs(clean.frames[0] - clean.wf).max() > 0.05 * clean.wf.max()
    # Flux: the GT sums to the WF's sum (light per pixel on a 3x finer grid).
    assert clean.gt.sum() == pytest.approx(clean.wf.sum(), rel=0.02)


def test_saturated_frames_carry_second_harmonic_peaks_at_2k(cell):
    """With a pattern inside the passband (600 nm: k and 2k below the cutoff) the modulated
    part of every frame (frame - WF) has a peak at 2k, of the power the harmonics and the OTF
    predict; a linear pattern's has none there; the frames' mean has no peak at k or 2k."""
    px = NONLINEAR.pixel_size_wf_nm
    k_otf, h_otf = optics.measured_otf_profile()
    found = {}
    for saturation in (imaging.SATURATION, 0.0):
        pattern = imaging.random_pattern(
            np.random.default_rng(1),
            period_nm=600.0,
            orientations=5,
            phases=5,
            saturation=saturation,
        )
        clean = imaging.image_specimen(
            cell.specimen, SIZE, frames=True, pattern=pattern, structure=NONLINEAR
        )
        k = pattern.frequency_per_nm
        peaks, powers = [], []
        for a, angle in enumerate(pattern.angles):
            modulated = clean.frames[5 * a + a] - clean.wf  # a different phase each time
            peaks.append(peak_ratio(modulated, 2 * k, angle, px))
            fy, fx = np.array([k, 2 * k]) * np.sin(angle), np.array([k, 2 * k]) * np.cos(angle)
            p1, p2 = dft_power(modulated, fy, fx, px)
            powers.append(p2 / p1)
        mean = imaging.widefield(clean.frames)
        flat = [peak_ratio(mean, n * k, angle, px) for angle in pattern.angles for n in (1, 2)]
        c = imaging.harmonics(pattern.modulation, saturation)
        h1, h2 = np.interp([k, 2 * k], k_otf, h_otf)
        predicted = (c[2] * h2 / (c[1] * h1)) ** 2 if len(c) > 2 else 0.0
        found[saturation] = (np.array(peaks), np.array(powers), max(flat), predicted)
    peaks, powers, flat, predicted = found[imaging.SATURATION]
    assert peaks.min() > 4.0 and flat < 3.0, (peaks, flat)
    assert 0.4 * predicted < powers.min() and powers.max() < 1.5 * predicted, (powers, predicted)
    peaks, powers, flat, _ = found[0.0]
    assert peaks.max() < 2.0 and flat < 3.0, (peaks, flat)
    assert powers.max() < 0.05 * predicted, powers


def test_second_harmonic_band_at_the_real_pattern(cell):
    """At the structure's own 180 nm pattern (beyond the cutoff, no visible peaks) the 2nd
    harmonic is still in the frames: the phase-demodulated band ``n = 2`` is far from zero."""
    clean = cell.clean
    phases = np.asarray(clean.pattern.phases)
    for a, offset in enumerate(clean.pattern.phase_offsets):
        stack = clean.frames[5 * a : 5 * a + 5]
        band = [np.tensordot(np.exp(-1j * n * (phases + offset)), stack, 1) / 5 for n in (1, 2)]
        ratio = np.abs(band[1]).std() / np.abs(band[0]).std()
        assert 0.05 < ratio < 1.0, ratio


def test_nonlinear_gt_resolution_is_about_3x_the_widefield(cell):
    """Decorrelation resolution (Descloux 2019) of the WF and the GT of one field, both with
    the photon noise of the same light: about 3.2x (the support fc + 2k over fc)."""
    rng = np.random.default_rng(2)
    scale = camera.photon_scale(cell.clean.wf, 1000.0) * NONLINEAR.frames
    wf = rng.poisson(cell.clean.wf * scale).astype(np.float64)
    gt = rng.poisson(cell.clean.gt * scale).astype(np.float64)
    res_wf = resolution_nm(wf, NONLINEAR.pixel_size_wf_nm)
    res_gt = resolution_nm(gt, NONLINEAR.pixel_size_gt_nm)
    assert 2.5 < res_wf / res_gt < 3.5, (res_wf, res_gt)
    assert res_gt < 90.0 < 200.0 < res_wf
    # The GT's support: fc + 2k, 3.24 times the widefield cutoff.
    wavelength = imaging.gt_wavelength_nm(NONLINEAR, period_nm=NONLINEAR.line_spacing_nm)
    assert layout.EMISSION_NM / wavelength == pytest.approx(3.24, abs=0.01)


def test_nonlinear_truth_is_the_ideal_image_and_the_raw_sets_mean(cell):
    seed = field.cell_seeds(0, 97, 1)[field.TRUTH]
    sim = truth.cell_truth(cell.clean, seed, structure=NONLINEAR)
    ideal = truth.cell_truth(cell.clean, seed, kind="ideal", structure=NONLINEAR)
    np.testing.assert_array_equal(sim.gt, ideal.gt)  # no nonlinear reconstruction in biosr
    assert sim.raw_gt.shape == (25, SIZE, SIZE) and ideal.raw_gt is None
    photons = calibrate.average_photons(sim.raw_gt.mean(axis=0))
    assert photons == pytest.approx(truth.RAW_GT_PHOTONS, rel=0.05)
