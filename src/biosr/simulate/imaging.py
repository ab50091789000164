"""Imaging a specimen as BioSR does: raw SIM frames, widefield and the SIM-resolution target.

All images are computed on the ground-truth grid (31.3 nm) with FFTs, from the
specimen's label positions splatted onto that grid:

- the transfer function multiplies the optics' OTF by the filament's Gaussian
  cross-section (25 nm FWHM) and divides out the bilinear splat kernel, so the
  result is the band-limited image of the continuous specimen;
- a raw frame is the specimen times the illumination ``1 + m cos(2 pi k.x + phi)``
  blurred by the widefield PSF, then integrated over 2 x 2 grid pixels
  (the 62.6 nm camera pixel). Per orientation, ``blur(s * exp(2 pi i k.x))`` is
  computed once; the three phases follow as ``A0 + m Re(exp(i phi) B)``;
- widefield = the mean of the 9 frames, which is exactly ``A0``, the blurred
  specimen: the three phases' cosines sum to zero;
- ground truth = the specimen blurred by the same Airy shape at half the
  wavelength (half the FWHM, twice the cutoff: ideal linear SIM), sampled at
  31.3 nm.

The pattern frequency is :data:`PATTERN_FRACTION` of the detection cutoff
``2 NA / lambda_em`` (period about 238 nm), so the first orders are still
transmitted (the stripes are visible in a raw frame) and a reconstruction's
band reaches 1.85 times the widefield cutoff, i.e. about 2x resolution.

The field is padded by :data:`PAD_NM` on each side before the FFT and cropped
after, so light does not wrap around the edges.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft

from biosr import layout, optics
from biosr.simulate.specimen import (
    FILAMENT_WIDTH_NM,
    STEP_NM,
    Specimen,
    cell_image,
    render_points,
)

#: Illumination pattern frequency as a fraction of the detection cutoff 2 NA / lambda_em.
PATTERN_FRACTION = 0.85
#: Modulation depth of the illumination pattern.
MODULATION = 0.8
#: Pattern orientations: a random base angle per cell plus these steps, degrees.
ANGLE_STEPS_DEG = (0.0, 60.0, 120.0)
#: Pattern phases per orientation (plus a random offset per orientation), radians.
PHASES = (0.0, 2.0 * np.pi / 3.0, 4.0 * np.pi / 3.0)
#: Margin simulated around the field and cropped away (no FFT wrap-around), nm.
PAD_NM = 1000.0


class Pattern(NamedTuple):
    """Illumination of a cell: 3 orientations (radians) with a phase offset each."""

    angles: np.ndarray
    phase_offsets: np.ndarray
    frequency_per_nm: float
    modulation: float


class CleanImages(NamedTuple):
    """Noise-free images of a field, in specimen units (label brightness per pixel).

    Attributes
    ----------
    wf : ndarray
        ``(n, n)`` widefield image (mean of the frames) on the 62.6 nm grid.
    gt : ndarray
        ``(2n, 2n)`` SIM-resolution ground truth on the 31.3 nm grid (flux per
        pixel, so it sums to the WF's sum).
    frames : ndarray or None
        ``(9, n, n)`` raw SIM frames (orientation-major), or None if not asked.
    pattern : Pattern or None
        The illumination used for the frames.
    """

    wf: np.ndarray
    gt: np.ndarray
    frames: np.ndarray | None
    pattern: Pattern | None


def pad_pixels(pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM) -> int:
    """Margin in WF pixels simulated around a field (:data:`PAD_NM`)."""
    return int(np.ceil(PAD_NM / pixel_size_nm))


def padded_size(size: int) -> int:
    """Side in WF pixels of the padded field for an output of `size` (at least
    :data:`PAD_NM` each side, and twice it a fast FFT length)."""
    n = 2 * (size + 2 * pad_pixels())
    while True:
        n = scipy.fft.next_fast_len(n, real=True)
        if n % 2 == 0:
            return n // 2
        n += 1


def field_nm(size: int) -> float:
    """Side in nm of the padded field simulated for an output of `size` WF pixels."""
    return padded_size(size) * layout.PIXEL_SIZE_WF_NM


def random_pattern(rng: np.random.Generator) -> Pattern:
    """Pattern of one cell: random base angle and phase offsets, fixed period and modulation."""
    base = rng.uniform(0.0, np.pi / 3.0)
    angles = base + np.deg2rad(np.asarray(ANGLE_STEPS_DEG))
    offsets = rng.uniform(0.0, 2.0 * np.pi, size=len(ANGLE_STEPS_DEG))
    freq = PATTERN_FRACTION * optics.cutoff_per_nm()
    return Pattern(angles, offsets, float(freq), MODULATION)


def transfer(
    shape: tuple[int, int],
    pixel_size_nm: float,
    *,
    wavelength_nm: float = layout.EMISSION_NM,
    na: float = layout.NA,
    real: bool = True,
) -> np.ndarray:
    """OTF x filament cross-section / bilinear-splat kernel on an FFT grid."""
    fy, fx = optics.frequency_grid(shape, pixel_size_nm, real=real)
    sigma = FILAMENT_WIDTH_NM / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    width = np.exp(-2.0 * np.pi**2 * sigma**2 * (fy**2 + fx**2))
    splat = np.sinc(fy * pixel_size_nm) ** 2 * np.sinc(fx * pixel_size_nm) ** 2
    h = optics.otf(shape, pixel_size_nm, wavelength_nm=wavelength_nm, na=na, real=real)
    return h * width / splat


def bin2(image: np.ndarray) -> np.ndarray:
    """Mean over 2 x 2 blocks of the last two axes (sides must be even)."""
    *lead, ny, nx = image.shape
    return image.reshape(*lead, ny // 2, 2, nx // 2, 2).mean(axis=(-3, -1))


def specimen_image(specimen: Specimen, grid: int) -> np.ndarray:
    """The specimen on the padded 31.3 nm grid: splatted labels plus the cell's background."""
    p = layout.PIXEL_SIZE_GT_NM
    image = render_points(specimen.points, specimen.weights, (grid, grid), p)
    if specimen.background > 0 and len(specimen.weights):
        # A uniform region keeps its level through the blur; set it relative to
        # the blurred peak of an average filament (linear density / (1.064 FWHM)).
        density = float(specimen.weights.mean()) / STEP_NM
        peak = density * p * p / (1.064 * optics.psf_fwhm_nm())
        image += specimen.background * peak * cell_image(specimen.cell, (grid, grid), p)
    return image


def image_specimen(
    specimen: Specimen,
    size: int,
    *,
    frames: bool = False,
    pattern: Pattern | None = None,
) -> CleanImages:
    """Noise-free WF, GT and (optionally) raw SIM frames of a specimen.

    Parameters
    ----------
    specimen : Specimen
        Drawn on a field of side :func:`field_nm` ``(size)``.
    size : int
        Output side in WF pixels (GT: ``2 * size``).
    frames : bool, optional
        Also compute the 9 raw SIM frames (costs 3 complex FFT pairs).
    pattern : Pattern, optional
        Illumination; required when `frames` is True.

    Returns
    -------
    CleanImages
    """
    padded = padded_size(size)
    pad = (padded - size) // 2
    grid = 2 * padded
    if abs(specimen.field_nm - grid * layout.PIXEL_SIZE_GT_NM) > 1e-6 * grid:
        raise ValueError(f"specimen field {specimen.field_nm} nm does not match size {size}")
    p = layout.PIXEL_SIZE_GT_NM
    s = specimen_image(specimen, grid)
    spec = scipy.fft.rfft2(s)
    h_wf = transfer((grid, grid), p)
    h_gt = transfer((grid, grid), p, wavelength_nm=layout.EMISSION_NM / 2.0)
    crop_gt = slice(2 * pad, 2 * pad + 2 * size)
    a0_fine = scipy.fft.irfft2(spec * h_wf, s=(grid, grid))
    wf = bin2(a0_fine[crop_gt, crop_gt])
    gt = scipy.fft.irfft2(spec * h_gt, s=(grid, grid))[crop_gt, crop_gt] / 4.0
    raw = None
    if frames:
        if pattern is None:
            raise ValueError("frames=True needs a pattern")
        h_full = transfer((grid, grid), p, real=False)
        coords = (np.arange(grid) + 0.5) * p
        raw = np.empty((len(pattern.angles) * len(PHASES), size, size))
        for a, (angle, offset) in enumerate(
            zip(pattern.angles, pattern.phase_offsets, strict=True)
        ):
            ky = pattern.frequency_per_nm * np.sin(angle)
            kx = pattern.frequency_per_nm * np.cos(angle)
            wave = (
                np.exp(2j * np.pi * ky * coords)[:, None] * np.exp(2j * np.pi * kx * coords)[None]
            )
            b = scipy.fft.ifft2(scipy.fft.fft2(s * wave) * h_full)
            b = bin2(b[crop_gt, crop_gt])
            for j, phase in enumerate(PHASES):
                rot = np.exp(1j * (phase + offset))
                raw[a * len(PHASES) + j] = wf + pattern.modulation * (rot * b).real
        np.maximum(raw, 0.0, out=raw)
    return CleanImages(np.maximum(wf, 0.0), np.maximum(gt, 0.0), raw, pattern)


def widefield(frames: np.ndarray) -> np.ndarray:
    """Widefield image of a raw SIM stack: the mean of its frames (the stripes cancel).

    Parameters
    ----------
    frames : ndarray
        ``(9, ny, nx)`` raw frames (counts or photons).

    Returns
    -------
    ndarray
        float64 ``(ny, nx)`` mean over the first axis.
    """
    return np.asarray(frames, dtype=np.float64).mean(axis=0)
