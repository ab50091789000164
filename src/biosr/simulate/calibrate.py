"""Calibration of the simulator from real data: image statistics, photon transfer, illumination.

The statistics are the estimators of ``DATASET_NOTES.md`` section 6, written
out here because they are definitions (the notes' SNR, the authors' photon
count) that no library ships; the simulator is tuned and tested against real
data with exactly these functions, so they are the one source of truth for
"how real data looks".
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from biosr import layout

#: Percentiles of the SNR's signal span (and of the haze ratio): high, low.
SIGNAL_PERCENTILES = (99.0, 20.0)
#: MAD to standard deviation of a Gaussian.
MAD_TO_SIGMA = 1.4826
#: Radial frequency, as a fraction of Nyquist, beyond which power counts as high-frequency.
HIGH_FREQUENCY_CUTOFF = 0.5
#: The authors' photon definition: Gaussian blur (``BLUR_SIZE`` x ``BLUR_SIZE``, sigma in px) ...
PHOTON_BLUR_SIGMA = 5.0
PHOTON_BLUR_SIZE = 9
#: ... then the pixels above this fraction of the blurred image's maximum.
PHOTON_MASK_FRACTION = 0.2
#: Foreground: the white top-hat (opening of ``FOREGROUND_SIZE`` px squares) of the image
#: smoothed with a Gaussian of ``FOREGROUND_SIGMA`` px, above ``FOREGROUND_LEVEL`` x its p99.
FOREGROUND_SIGMA = 1.0
FOREGROUND_SIZE = 9
FOREGROUND_LEVEL = 0.25
#: Keys of :func:`image_statistics`, in the order tables list them.
IMAGE_KEYS = ("snr", "high_frequency_fraction", "haze_ratio", "foreground_fraction", "photons")


def robust_noise(image: np.ndarray) -> float:
    """Noise standard deviation from horizontal pixel differences over the darker half.

    ``1.4826 x MAD(d) / sqrt(2)`` of the differences ``d`` of horizontally
    adjacent pixels that both lie at or below the image's median (the
    darker half, where filaments' edges add least to the differences).

    Parameters
    ----------
    image : ndarray
        2-D image.

    Returns
    -------
    float
        Noise standard deviation, in the image's units.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(robust_noise(rng.normal(0.0, 2.0, (256, 256))), 1)
    2.0
    """
    image = np.asarray(image, dtype=np.float64)
    left, right = image[:, :-1], image[:, 1:]
    median = np.median(image)
    diff = (right - left)[(left <= median) & (right <= median)]
    if diff.size == 0:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2.0))


def snr(image: np.ndarray) -> float:
    """The notes' SNR: ``(99th percentile - 20th percentile) / robust noise``.

    Parameters
    ----------
    image : ndarray
        2-D image (a widefield image or one raw frame).

    Returns
    -------
    float
        The SNR; ``inf`` for a noise-free image with structure, 0 for a constant one.
    """
    high, low = np.percentile(image, SIGNAL_PERCENTILES)
    span = float(high - low)
    noise = robust_noise(image)
    if noise == 0.0:
        return float("inf") if span > 0 else 0.0
    return span / noise


def frame_snr(frame: np.ndarray) -> float:
    """SNR of one raw frame by the same estimator as the widefield's (:func:`snr`)."""
    return snr(frame)


def high_frequency_fraction(image: np.ndarray, *, cutoff: float = HIGH_FREQUENCY_CUTOFF) -> float:
    """Share of the power spectrum, DC aside, beyond `cutoff` x Nyquist (radially).

    The image's mean is removed and a 2-D Hann window applied first, so that
    the jump between opposite edges (periodic FFT) adds no spurious power.

    Parameters
    ----------
    image : ndarray
        2-D image.
    cutoff : float, optional
        Radial frequency as a fraction of Nyquist (default 0.5: half Nyquist,
        0.25 cycles per pixel).

    Returns
    -------
    float
        Fraction in [0, 1] (0 for a constant image).
    """
    image = np.asarray(image, dtype=np.float64)
    window = np.outer(np.hanning(image.shape[0]), np.hanning(image.shape[1]))
    power = np.abs(np.fft.rfft2((image - image.mean()) * window)) ** 2
    power[0, 0] = 0.0
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.rfftfreq(image.shape[1])[None, :]
    # rfft2 holds the columns 1..n/2-1 once for two; weight them twice.
    weight = np.full(power.shape[1], 2.0)
    weight[0] = 1.0
    if image.shape[1] % 2 == 0:
        weight[-1] = 1.0
    power = power * weight
    total = float(power.sum())
    if total == 0.0:
        return 0.0
    return float(power[np.hypot(fy, fx) > cutoff * 0.5].sum() / total)


def haze_ratio(image: np.ndarray, *, offset: float = layout.CAMERA_OFFSET) -> float:
    """Haze to structure: ``(20th percentile - offset) / (99th percentile - offset)``."""
    high, low = np.percentile(image, SIGNAL_PERCENTILES)
    if high - offset <= 0:
        return 0.0
    return float((low - offset) / (high - offset))


def photon_mask(wf: np.ndarray, *, offset: float = layout.CAMERA_OFFSET) -> np.ndarray:
    """The authors' structure mask and the blurred image it is cut from.

    ``WF - offset``, clipped at 0, blurred with a 9 x 9 Gaussian of sigma 5
    (edges replicated, as MATLAB's ``imgaussfilt``); the mask keeps the
    pixels above 0.2 x the blurred image's maximum.

    Returns
    -------
    mask : ndarray of bool
    blurred : ndarray of float64
    """
    signal = np.clip(np.asarray(wf, dtype=np.float64) - offset, 0.0, None)
    radius = PHOTON_BLUR_SIZE // 2
    blurred = ndimage.gaussian_filter(
        signal, PHOTON_BLUR_SIGMA, mode="nearest", truncate=radius / PHOTON_BLUR_SIGMA
    )
    return blurred > PHOTON_MASK_FRACTION * blurred.max(), blurred


def average_photons(
    wf: np.ndarray,
    *,
    offset: float = layout.CAMERA_OFFSET,
    photons_per_count: float = layout.PHOTONS_PER_COUNT,
) -> float:
    """Average photon count of a widefield image by the notes' (the authors') definition.

    The mean of the blurred, offset-free image (:func:`photon_mask`) over its
    mask, times `photons_per_count`.
    """
    mask, blurred = photon_mask(wf, offset=offset)
    if not mask.any():
        return 0.0
    return float(blurred[mask].mean() * photons_per_count)


def foreground_fraction(image: np.ndarray) -> float:
    """Share of pixels on thin structure (filaments), above the local background.

    The image is smoothed with a Gaussian of :data:`FOREGROUND_SIGMA` pixels
    (so that noise decides few pixels); its white top-hat (the image minus
    its grey opening by a :data:`FOREGROUND_SIZE`-pixel square, about 0.56 um,
    wider than a filament's image) keeps what is narrower than the square and
    removes the haze however it varies across the cell. A pixel is
    foreground when the top-hat exceeds :data:`FOREGROUND_LEVEL` of the
    top-hat's 99th percentile: a threshold relative to the bright filaments,
    so the figure measures how much of the field filaments cover, whatever
    the brightness, offset and haze.
    """
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float64), FOREGROUND_SIGMA)
    tophat = smooth - ndimage.grey_opening(smooth, size=(FOREGROUND_SIZE, FOREGROUND_SIZE))
    high = float(np.percentile(tophat, SIGNAL_PERCENTILES[0]))
    if high <= 0.0:
        return 0.0
    return float((tophat > FOREGROUND_LEVEL * high).mean())


def image_statistics(
    wf: np.ndarray,
    *,
    offset: float = layout.CAMERA_OFFSET,
    photons_per_count: float = layout.PHOTONS_PER_COUNT,
) -> dict[str, float]:
    """The statistics of a widefield image (the mean of 9 raw frames) that calibration matches.

    Parameters
    ----------
    wf : ndarray
        2-D widefield image in camera counts.
    offset : float, optional
        Camera offset in counts (default :data:`biosr.layout.CAMERA_OFFSET`).
    photons_per_count : float, optional
        Photons per count (default :data:`biosr.layout.PHOTONS_PER_COUNT`).

    Returns
    -------
    dict
        ``snr`` (:func:`snr`), ``high_frequency_fraction``
        (:func:`high_frequency_fraction`), ``haze_ratio`` (:func:`haze_ratio`),
        ``foreground_fraction`` (:func:`foreground_fraction`) and ``photons``
        (:func:`average_photons`), in the order of :data:`IMAGE_KEYS`.
    """
    wf = np.asarray(wf, dtype=np.float64)
    return {
        "snr": snr(wf),
        "high_frequency_fraction": high_frequency_fraction(wf),
        "haze_ratio": haze_ratio(wf, offset=offset),
        "foreground_fraction": foreground_fraction(wf),
        "photons": average_photons(wf, offset=offset, photons_per_count=photons_per_count),
    }


def stack_statistics(
    stack: np.ndarray,
    *,
    offset: float = layout.CAMERA_OFFSET,
    photons_per_count: float = layout.PHOTONS_PER_COUNT,
) -> dict[str, float]:
    """:func:`image_statistics` of a raw stack's widefield image, plus ``frame_snr``.

    Parameters
    ----------
    stack : ndarray
        ``(9, H, W)`` raw SIM frames in camera counts.
    offset, photons_per_count : float, optional
        As in :func:`image_statistics`.

    Returns
    -------
    dict
        The widefield's statistics (the WF is the mean of the frames) and
        ``frame_snr``, the median of the 9 frames' :func:`frame_snr`.
    """
    stack = np.asarray(stack, dtype=np.float64)
    out = image_statistics(stack.mean(axis=0), offset=offset, photons_per_count=photons_per_count)
    out["frame_snr"] = float(np.median([frame_snr(f) for f in stack]))
    return out
