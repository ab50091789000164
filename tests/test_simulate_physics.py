"""The simulator's physics, measured: resolution, defocus, haze, photons, stripes, SIM content."""

from __future__ import annotations

import numpy as np
import pytest

from biosr import layout, optics
from biosr.simulate import calibrate, camera, field, imaging, specimen

SIZE = 128


def fwhm(profile: np.ndarray, pixel_nm: float) -> float:
    """FWHM of a single-peaked profile by linear interpolation of the half-maximum crossings."""
    p = profile - profile.min()
    p = p / p.max()
    i = int(p.argmax())
    lo = i
    while p[lo] > 0.5:
        lo -= 1
    hi = i
    while p[hi] > 0.5:
        hi += 1
    left = lo + (0.5 - p[lo]) / (p[lo + 1] - p[lo])
    right = hi - 1 + (p[hi - 1] - 0.5) / (p[hi - 1] - p[hi])
    return (right - left) * pixel_nm


def hann2(shape: tuple[int, int]) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1]))


def dft_power(image: np.ndarray, fy: float, fx: float, pixel_nm: float) -> float:
    """Power of the Hann-windowed image at one (non-integer) frequency, cycles per nm."""
    a = (image - image.mean()) * hann2(image.shape)
    y = (np.arange(image.shape[0]) + 0.5) * pixel_nm
    x = (np.arange(image.shape[1]) + 0.5) * pixel_nm
    return float(abs(np.exp(-2j * np.pi * fy * y) @ a @ np.exp(-2j * np.pi * fx * x)) ** 2)


def stripe_ratio(image: np.ndarray, freq: float, angle: float, pixel_nm: float) -> float:
    """Power at the pattern frequency over the mean power on a ring 4 frequency bins around it."""
    fy, fx = freq * np.sin(angle), freq * np.cos(angle)
    df = 4.0 / (image.shape[0] * pixel_nm)
    ring = [
        dft_power(image, fy + df * np.sin(t), fx + df * np.cos(t), pixel_nm)
        for t in np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ]
    return dft_power(image, fy, fx, pixel_nm) / float(np.mean(ring))


def radial_band_ratio(image, pixel_nm, band, floor) -> float:
    """Mean power in radial band `band` (cycles/nm) over mean power beyond `floor`."""
    a = (image - image.mean()) * hann2(image.shape)
    power = np.abs(np.fft.fft2(a)) ** 2
    fy = np.fft.fftfreq(image.shape[0], pixel_nm)[:, None]
    fx = np.fft.fftfreq(image.shape[1], pixel_nm)[None, :]
    r = np.hypot(fy, fx)
    return float(power[(r > band[0]) & (r < band[1])].mean() / power[r > floor].mean())


@pytest.fixture(scope="module")
def cell() -> field.Field:
    """A fairly dense simulated cell with raw frames (128 px WF, 256 px GT)."""
    return field.simulate_field(SIZE, field.cell_seeds(0, 99, 1), frames=True, density_per_nm=3e-3)


def test_psf_kernel_fwhm_matches_stated():
    kernel = optics.widefield_psf(10.0)
    centre = kernel.shape[0] // 2
    measured = fwhm(kernel[centre], 10.0)
    assert kernel.sum() == pytest.approx(1.0)
    assert measured == pytest.approx(optics.psf_fwhm_nm(), rel=0.03)
    assert optics.psf_fwhm_nm(525.0, 1.3) == pytest.approx(207.76, abs=0.01)


def test_resolution_wf_over_gt_on_isolated_filament():
    n = 64
    line = specimen.line_specimen(imaging.field_nm(n), angle_deg=90.0)
    airy = imaging.image_specimen(line, n, otf_kind="airy")
    wf_fwhm = fwhm(airy.wf.mean(axis=0), layout.PIXEL_SIZE_WF_NM)
    gt_fwhm = fwhm(airy.gt.mean(axis=0), layout.PIXEL_SIZE_GT_NM)
    assert wf_fwhm / gt_fwhm == pytest.approx(2.0, abs=0.3)
    assert wf_fwhm == pytest.approx(optics.psf_fwhm_nm(), rel=0.15)
    # The measured OTF (the default) lies below the Airy one: a wider line, same ideal GT.
    measured = imaging.image_specimen(line, n)
    wide = fwhm(measured.wf.mean(axis=0), layout.PIXEL_SIZE_WF_NM)
    assert 1.08 * wf_fwhm < wide < 1.4 * wf_fwhm
    np.testing.assert_allclose(measured.gt, airy.gt)


def test_defocus_blurs_and_dims_a_filament():
    n = 64
    line = specimen.line_specimen(imaging.field_nm(n), angle_deg=90.0)
    focus = imaging.image_specimen(line, n).wf.mean(axis=0)
    profiles = [focus]
    for z in (250.0, 450.0):
        off = line._replace(depths=np.full(len(line.depths), z))
        profiles.append(imaging.image_specimen(off, n, slices=9).wf.mean(axis=0))
    peaks = [p.max() for p in profiles]
    widths = [fwhm(p, layout.PIXEL_SIZE_WF_NM) for p in profiles]
    assert peaks[0] > 1.15 * peaks[1] > 1.15 * 1.4 * peaks[2], peaks
    assert widths[0] < widths[1] < widths[2], widths
    # Light is moved, not lost: the line's flux is the same at every depth.
    assert [p.sum() for p in profiles] == pytest.approx([focus.sum()] * 3, rel=1e-3)
    assert imaging.defocus_factor(np.array([0.0, 2e-3]), 0.0).tolist() == [1.0, 1.0]


def test_specimen_depths_and_haze_inside_the_cell():
    seeds = field.cell_seeds(0, 99, 2)
    f = field.simulate_field(SIZE, seeds, cell_radius=(2.0, 2.0), density_per_nm=3e-3)
    depths = f.specimen.depths
    assert np.abs(depths).max() <= specimen.DEPTH_NM
    assert np.std(depths) > 0.4 * specimen.DEPTH_NM  # spread through the volume
    # The noise-free WF's haze ratio is the drawn one (inside the range), and no haze without it.
    ratio = calibrate.haze_ratio(f.clean.wf, offset=0.0)
    assert imaging.HAZE_RATIO[0] - 0.01 < ratio < imaging.HAZE_RATIO[1] + 0.01
    clean = imaging.image_specimen(f.specimen, SIZE, haze=0.0)
    assert calibrate.haze_ratio(clean.wf, offset=0.0) < 0.5 * ratio


def test_photon_count_on_structure_per_level(cell):
    rng = np.random.default_rng(1)
    for level in layout.LEVELS:
        scale = camera.photon_scale(cell.clean.wf, layout.PHOTONS[level])
        counts = camera.expose(cell.clean.frames * scale, rng)
        assert counts.dtype == np.uint16 and counts.shape == (9, SIZE, SIZE)
        # The authors' estimator on the noisy counts finds the level's photons.
        measured = calibrate.average_photons(imaging.widefield(counts))
        assert measured == pytest.approx(layout.PHOTONS[level], rel=0.10)
        # Over all pixels, counts = offset + expected photons / gain.
        expected = (cell.clean.frames * scale).mean() / layout.PHOTONS_PER_COUNT
        assert counts.mean() - expected == pytest.approx(layout.CAMERA_OFFSET, abs=0.5)


def test_widefield_shortcut_has_the_nine_frame_statistics(cell):
    rng = np.random.default_rng(2)
    scale = camera.photon_scale(cell.clean.wf, layout.PHOTONS[5])
    summed = camera.widefield_counts(cell.clean.wf * scale, rng)
    frames = camera.expose(cell.clean.frames * scale, rng).astype(np.float64).sum(axis=0)
    mask = cell.structure
    assert summed[mask].mean() == pytest.approx(frames[mask].mean(), rel=0.02)
    assert np.var(summed[mask] - frames[mask]) == pytest.approx(
        2 * np.mean(cell.clean.wf[mask] * scale * 9) / layout.PHOTONS_PER_COUNT**2, rel=0.15
    )


def stripe_ratios(clean: imaging.CleanImages, rng: np.random.Generator) -> tuple[list, list]:
    """Stripe ratios of the 9 noisy frames (each at its orientation) and of their mean."""
    scale = camera.photon_scale(clean.wf, layout.PHOTONS[9])
    frames = camera.expose(clean.frames * scale, rng).astype(np.float64)
    pattern, px = clean.pattern, layout.PIXEL_SIZE_WF_NM
    single = [
        stripe_ratio(frames[j], pattern.frequency_per_nm, pattern.angles[j // 3], px)
        for j in range(9)
    ]
    mean = [
        stripe_ratio(frames.mean(axis=0), pattern.frequency_per_nm, a, px) for a in pattern.angles
    ]
    return single, mean


def test_stripes_in_raw_frames_cancel_in_their_mean(cell):
    # A pattern inside the detection passband (250 nm) shows in each frame, not in the mean.
    pattern = imaging.random_pattern(np.random.default_rng(3), period_nm=250.0, modulation=0.8)
    clean = imaging.image_specimen(cell.specimen, SIZE, frames=True, pattern=pattern)
    single, mean = stripe_ratios(clean, np.random.default_rng(3))
    assert min(single) > 5.0, single
    assert max(mean) < 3.0, mean
    # BioSR's 180 nm lines lie beyond the measured OTF's cutoff (about 5 / um): no stripe
    # peak even in one frame, as in real BioSR frames...
    k, h = optics.measured_otf_profile()
    assert 1.0 / imaging.PATTERN_PERIOD_NM > 1.05 * k[np.argmax(h < 0.01)]
    single, mean = stripe_ratios(cell.clean, np.random.default_rng(4))
    assert max(single) < 3.0 and max(mean) < 3.0, (single, mean)
    # ...yet each frame carries the moire of the shifted bands: it differs from the WF.
    diff = cell.clean.frames[0] - cell.clean.wf
    assert np.abs(diff).max() > 0.1 * cell.clean.wf.max()


def test_gt_carries_frequencies_beyond_wf_cutoff_and_wf_does_not(cell):
    rng = np.random.default_rng(4)
    cutoff = optics.cutoff_per_nm()
    scale = camera.photon_scale(cell.clean.wf, layout.PHOTONS[9])
    wf = camera.widefield_counts(cell.clean.wf * scale, rng)
    # The GT with photon noise at the same flux (photons per 31.3 nm pixel).
    gt = rng.poisson(cell.clean.gt * scale * 9).astype(np.float64)
    wf_ratio = radial_band_ratio(wf, 62.6, (1.1 * cutoff, 1.5 * cutoff), 1.6 * cutoff)
    gt_ratio = radial_band_ratio(gt, 31.3, (1.1 * cutoff, 1.6 * cutoff), 2.1 * cutoff)
    assert wf_ratio < 1.5, wf_ratio
    assert gt_ratio > 10.0, gt_ratio


def test_specimen_is_filaments_inside_the_cell():
    rng = np.random.default_rng(5)
    spec = specimen.random_specimen(20_000.0, rng, density_per_nm=2e-3)
    assert len(spec.points) > 1000
    assert spec.cell.contains(spec.points[:, 0], spec.points[:, 1]).all()
    # Consecutive labels are one step apart: chains, not scattered points.
    steps = np.hypot(*np.diff(spec.points, axis=0).T)
    assert np.median(steps) == pytest.approx(specimen.STEP_NM, rel=1e-6)
    assert spec.weights.mean() == pytest.approx(1.0, rel=0.2)


def test_mean_of_noise_free_frames_is_the_widefield(cell):
    wf = imaging.widefield(cell.clean.frames)
    assert np.abs(wf - cell.clean.wf).max() < 1e-9 * cell.clean.wf.max()
    # ...while each frame differs from it by the modulated bands.
    assert np.abs(cell.clean.frames[0] - cell.clean.wf).max() > 0.1 * cell.clean.wf.max()
