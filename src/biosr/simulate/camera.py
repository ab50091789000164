"""The camera: Poisson photon noise, background offset, gain and Gaussian read noise, as uint16.

BioSR's sCMOS camera reports counts; the authors convert with 0.6026 photons
per count over an offset of about 100 counts (:mod:`biosr.layout`). Photons
here are detected photo-electrons (quantum efficiency is folded into the
photon count); every photon, from the filaments, the out-of-focus haze or the
cytosol, is Poisson. The sCMOS's fixed pattern (pixel offset and gain
non-uniformity, the same in every frame) is part of the model: a real BioSR
stack's frames share about 4% of their noise, which does not average out of
its widefield image. Read noise is an assumption (about 1 electron rms),
stated in :data:`READ_NOISE_COUNTS`; ``biosr simulate --calibration`` takes
offset, gain and read noise from a real stack's photon-transfer curve instead.

A level's photon count follows the authors' definition
(:func:`biosr.simulate.calibrate.average_photons`: the blurred WF's mean over
the pixels above 0.2 of its maximum), so a simulated level and a real stack of
the same count are comparable.
"""

from __future__ import annotations

import numpy as np

from biosr import layout

#: Gaussian read noise, counts rms: 1.2 e-, as the photon-transfer curve of a real BioSR
#: stack (``../shared/fixtures/real``) measures it (3.1 of its counts at 0.435 photons each,
#: less the fixed pattern below).
READ_NOISE_COUNTS = 2.0
#: Pixel-to-pixel offset non-uniformity of the sCMOS (fixed pattern, the same in every
#: frame), in photon equivalents rms: 0.5, as the covariance of a real BioSR stack's frames
#: beyond the optical cutoff measures it (1.1 of its counts at 0.435 photons each).
OFFSET_NONUNIFORMITY = 0.5
#: Pixel-to-pixel gain non-uniformity (fixed pattern), relative rms: 4%, from the same
#: covariance's growth with the signal.
GAIN_NONUNIFORMITY = 0.04
#: Seed of the camera's fixed-pattern maps: one camera, the same pixels in every cell.
CAMERA_SEED = 20210301
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


def photon_scale(clean_wf: np.ndarray, photons: float) -> float:
    """Factor bringing a noise-free WF image to `photons` by the authors' definition.

    Parameters
    ----------
    clean_wf : ndarray
        Noise-free widefield image (any units, no offset).
    photons : float
        Average photon count per raw frame
        (:func:`biosr.simulate.calibrate.average_photons`).

    Returns
    -------
    float
        ``photons / average_photons(clean_wf)`` with offset 0 and 1 photon per unit.
    """
    from biosr.simulate.calibrate import average_photons

    mean = average_photons(clean_wf, offset=0.0, photons_per_count=1.0)
    if mean <= 0:
        raise ValueError("the noise-free image has no structure to scale")
    return float(photons) / mean


def fixed_pattern(
    shape: tuple[int, ...],
    *,
    offset_nonuniformity: float = OFFSET_NONUNIFORMITY,
    gain_nonuniformity: float = GAIN_NONUNIFORMITY,
    seed: int = CAMERA_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """The camera's fixed pattern over a frame of `shape` (its last two axes).

    Returns
    -------
    gain : ndarray
        Relative gain of each pixel, ``1 + gain_nonuniformity * N(0, 1)``.
    offset : ndarray
        Offset of each pixel in photon equivalents, ``offset_nonuniformity * N(0, 1)``.
        Both drawn from `seed`, so every cell sees the same camera.
    """
    rng = np.random.default_rng(seed)
    frame = tuple(shape[-2:])
    gain = 1.0 + gain_nonuniformity * rng.standard_normal(frame)
    return gain, offset_nonuniformity * rng.standard_normal(frame)


def expose(
    rate: np.ndarray,
    rng: np.random.Generator,
    *,
    offset: float = layout.CAMERA_OFFSET,
    photons_per_count: float = layout.PHOTONS_PER_COUNT,
    read_noise: float = READ_NOISE_COUNTS,
    offset_nonuniformity: float = OFFSET_NONUNIFORMITY,
    gain_nonuniformity: float = GAIN_NONUNIFORMITY,
) -> np.ndarray:
    """One camera exposure: expected photons per pixel in, uint16 counts out.

    Parameters
    ----------
    rate : ndarray
        Expected detected photons per pixel (any shape, non-negative; frames
        on the last two axes).
    rng : numpy.random.Generator
        Source of randomness.
    offset, photons_per_count, read_noise : float, optional
        Camera offset (counts), gain (photons per count) and read noise (counts rms).
    offset_nonuniformity, gain_nonuniformity : float, optional
        The sCMOS fixed pattern (:func:`fixed_pattern`): the same in every
        frame, so unlike the read noise it does not average out of a widefield image.

    Returns
    -------
    ndarray
        uint16 counts ``(gain_map * photons + offset_map) / gain + offset + read noise``,
        rounded and clipped.
    """
    gain_map, offset_map = fixed_pattern(
        np.shape(rate),
        offset_nonuniformity=offset_nonuniformity,
        gain_nonuniformity=gain_nonuniformity,
    )
    photons = rng.poisson(np.maximum(rate, 0.0)) * gain_map + offset_map
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
    offset_nonuniformity: float = OFFSET_NONUNIFORMITY,
    gain_nonuniformity: float = GAIN_NONUNIFORMITY,
) -> np.ndarray:
    """Sum of `frames` exposures of a stripe-free rate, drawn in one step (float64 counts).

    The shortcut is exact for the photon noise: the 9 raw frames' photon
    counts are independent Poisson variables, and a sum of independent
    Poisson variables is Poisson with the summed rate; the illumination
    patterns of the 3 phases sum to a constant, so the summed rate is
    ``frames * rate`` of the widefield image. The read noise of the sum is
    Gaussian with ``frames`` times the variance; the fixed pattern
    (:func:`fixed_pattern`) is the same in every frame, so it adds up
    coherently. Only the per-frame rounding to integer counts (variance 1/12
    count per frame) is left out.
    """
    gain_map, offset_map = fixed_pattern(
        np.shape(rate),
        offset_nonuniformity=offset_nonuniformity,
        gain_nonuniformity=gain_nonuniformity,
    )
    photons = rng.poisson(frames * np.maximum(rate, 0.0)) * gain_map + frames * offset_map
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
