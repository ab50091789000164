"""The camera: Poisson photon noise, background offset, gain and Gaussian read noise, as uint16.

BioSR's sCMOS camera reports counts; the authors convert with 0.6026 photons
per count over an offset of about 100 counts (:mod:`biosr.layout`). Photons
here are detected photo-electrons (quantum efficiency is folded into the
photon count). Read noise is an assumption (about 1 electron rms), stated in
:data:`READ_NOISE_COUNTS`.
"""

from __future__ import annotations

import numpy as np

from biosr import layout

#: Gaussian read noise, counts rms (an assumption: about 0.9 e- for a modern sCMOS).
READ_NOISE_COUNTS = 1.5
#: Largest count a 16-bit camera reports.
MAX_COUNT = 65535
#: Structure: pixels of the noise-free WF image above this fraction of its 99.5th percentile.
STRUCTURE_FRACTION = 0.25


def structure_mask(clean: np.ndarray, fraction: float = STRUCTURE_FRACTION) -> np.ndarray:
    """Pixels that carry structure: noise-free image above `fraction` of its 99.5th percentile.

    The photon count of a signal level is defined as the mean expected count
    per raw frame over these pixels ("average photon count on the structure").
    """
    high = float(np.percentile(clean, 99.5))
    return clean > fraction * high


def photon_scale(clean_wf: np.ndarray, photons: float, mask: np.ndarray | None = None) -> float:
    """Factor bringing a noise-free WF image to a mean of `photons` per frame on the structure."""
    mask = structure_mask(clean_wf) if mask is None else mask
    mean = float(clean_wf[mask].mean()) if mask.any() else 0.0
    if mean <= 0:
        raise ValueError("the noise-free image has no structure to scale")
    return float(photons) / mean


def expose(
    rate: np.ndarray,
    rng: np.random.Generator,
    *,
    offset: float = layout.CAMERA_OFFSET,
    photons_per_count: float = layout.PHOTONS_PER_COUNT,
    read_noise: float = READ_NOISE_COUNTS,
) -> np.ndarray:
    """One camera exposure: expected photons per pixel in, uint16 counts out.

    Parameters
    ----------
    rate : ndarray
        Expected detected photons per pixel (any shape, non-negative).
    rng : numpy.random.Generator
        Source of randomness.
    offset, photons_per_count, read_noise : float, optional
        Camera offset (counts), gain (photons per count) and read noise (counts rms).

    Returns
    -------
    ndarray
        uint16 counts ``photons / gain + offset + read noise``, rounded and clipped.
    """
    photons = rng.poisson(np.maximum(rate, 0.0))
    counts = photons / photons_per_count + offset + rng.normal(0.0, read_noise, np.shape(rate))
    return np.clip(np.rint(counts), 0, MAX_COUNT).astype(np.uint16)


def widefield_counts(
    rate: np.ndarray,
    rng: np.random.Generator,
    *,
    frames: int = layout.RAW_FRAMES,
    offset: float = layout.CAMERA_OFFSET,
    photons_per_count: float = layout.PHOTONS_PER_COUNT,
    read_noise: float = READ_NOISE_COUNTS,
) -> np.ndarray:
    """Sum of `frames` exposures of a stripe-free rate, drawn in one step (float64 counts).

    The shortcut is exact for the photon noise: the 9 raw frames' photon
    counts are independent Poisson variables, and a sum of independent
    Poisson variables is Poisson with the summed rate; the illumination
    patterns of the 3 phases sum to a constant, so the summed rate is
    ``frames * rate`` of the widefield image. The read noise of the sum is
    Gaussian with ``frames`` times the variance. Only the per-frame rounding to
    integer counts (variance 1/12 count per frame) is left out.
    """
    photons = rng.poisson(frames * np.maximum(rate, 0.0))
    noise = rng.normal(0.0, read_noise * np.sqrt(frames), np.shape(rate))
    return photons / photons_per_count + frames * offset + noise


def to_photons(
    counts: np.ndarray,
    *,
    offset: float = layout.CAMERA_OFFSET,
    photons_per_count: float = layout.PHOTONS_PER_COUNT,
) -> np.ndarray:
    """Convert camera counts back to photons: ``(counts - offset) * gain``."""
    return (np.asarray(counts, dtype=np.float64) - offset) * photons_per_count
