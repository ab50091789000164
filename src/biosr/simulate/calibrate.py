"""Calibration of the simulator from real data: image statistics, photon transfer, illumination.

The statistics are the estimators of ``DATASET_NOTES.md`` section 6, written
out here because they are definitions (the notes' SNR, the authors' photon
count) that no library ships; the simulator is tuned and tested against real
data with exactly these functions, so they are the one source of truth for
"how real data looks".
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from biosr import layout
from biosr.errors import DataError
from biosr.io.atomic import write_text

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
    darker half, where filaments' edges add least to the differences). This
    is the notes' estimator, kept as it is so that figures compare: where
    the darker half is background set apart by structure it reads the noise
    (first example), but choosing pixels by their own noisy values narrows
    the differences where noise decides the half (pure noise reads 0.56
    sigma), so a noisier image's SNR reads higher than its noise alone.

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
    >>> background = np.where(np.arange(256) < 128, 0.0, 100.0) + np.zeros((256, 1))
    >>> round(robust_noise(background + rng.normal(0.0, 2.0, (256, 256))), 1)
    2.0
    >>> round(robust_noise(rng.normal(0.0, 2.0, (256, 256))), 1)
    1.1
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


# --------------------------------------------------------------------------- #
# Photon transfer
# --------------------------------------------------------------------------- #

#: The noise residual keeps frequencies beyond this multiple of the detection cutoff
#: (``2 NA / lambda``), where a camera image holds noise only ...
PTC_CUTOFF = 1.1
#: ... reached by a raised-cosine edge this wide (cycles per pixel), which keeps the filter short.
PTC_EDGE = 0.04
#: Pixels left out along each edge (the FFT's wrap-around leaks structure there).
PTC_BORDER = 8
#: Bins of the local mean (equal numbers of pixels) the curve is sampled at.
PTC_BINS = 32
#: Bins whose signal is below this many standard deviations of the dark pixels' local
#: mean are left out of the slope's fit (their level is biased up by selection).
PTC_CLEAR = 8.0
#: Fewest such pixels (all frames together) the curve is sampled on.
MIN_CLEAR_PIXELS = 1000
#: The offset is the level of the darkest pixels: this percentile of the smoothed image ...
DARK_PERCENTILE = 2.0
#: ... smoothed with a Gaussian of this sigma (px), so that selecting them hardly biases it.
DARK_SIGMA = 2.0
#: A grid of values whose step exceeds this many units is taken as rescaled counts.
MIN_RESCALE_STEP = 1.5
#: Frames whose count steps agree to this relative tolerance share one rescaling.
STEP_TOLERANCE = 1e-3


class PhotonTransfer(NamedTuple):
    """The camera as the photon-transfer curve shows it.

    The curve is ``variance = slope x (mean - offset) + intercept``, per raw
    frame, in camera counts (of the count grid :attr:`count_step` finds, for
    an input its publisher rescaled).

    Attributes
    ----------
    gain : float
        Photons per count (as :data:`biosr.layout.PHOTONS_PER_COUNT`): ``1 / slope``.
    offset : float
        Camera offset, counts: the level of the darkest pixels (an upper bound
        when no pixel of the field is free of signal). For a stack rescaled in
        groups of frames, the mean of the groups' offsets (see :attr:`frame_offsets`).
    read_noise : float
        Read noise, counts rms: ``sqrt(intercept - 1/12)`` (the rounding to
        integer counts adds 1/12 count squared).
    slope : float
        Variance per count of mean, counts per photon.
    intercept : float
        Variance at the offset (zero signal), counts squared.
    count_step : tuple of float
        Input units per count, per frame (1 for camera counts).
    frame_offsets : tuple of float
        The offset of each frame in input units (``offset x count_step`` for
        a stack in one scale).
    """

    gain: float
    offset: float
    read_noise: float
    slope: float
    intercept: float
    count_step: tuple[float, ...]
    frame_offsets: tuple[float, ...]


def count_step(image: np.ndarray) -> float:
    """Input units per camera count: the step of the grid an integer image's values lie on.

    A raw frame in camera counts has step 1. A publisher that stretched the
    counts to 0..65535 (as the rDL-SIM example data) leaves them on a grid of
    step ``65535 / (max - min)`` with rounding below a hundredth of a step;
    that step is found from the gaps between the distinct values. Images
    whose values are not on such a grid (floats, sums, means) get 1.

    Examples
    --------
    >>> count_step(np.arange(10, dtype=np.uint16).reshape(2, 5) * 360)
    360.0
    """
    image = np.asarray(image)
    if image.dtype.kind not in "ui":
        return 1.0
    values = np.unique(image).astype(np.float64)
    if values.size < 3:
        return 1.0
    gaps = np.diff(values)
    smallest = float(np.median(gaps[gaps <= np.median(gaps)]))
    if smallest < MIN_RESCALE_STEP:
        return 1.0
    steps = np.rint(gaps / smallest)
    step = float(gaps.sum() / steps.sum())
    grid = (values - values[0]) / step
    # An outlier (a clipped pixel) may sit off the grid; the bulk must not.
    if np.mean(np.abs(grid - np.rint(grid)) < 0.05) < 0.99:
        return 1.0
    return round(step, 6)


def rescale_groups(steps: list[float], *, tolerance: float = STEP_TOLERANCE) -> list[list[int]]:
    """Frames of one rescaling: indices whose count steps agree within `tolerance` (relative).

    Examples
    --------
    >>> rescale_groups([360.08, 360.09, 319.7, 1.0, 360.08])
    [[0, 1, 4], [2], [3]]
    """
    groups: list[list[int]] = []
    for i, step in enumerate(steps):
        for members in groups:
            if abs(steps[members[0]] - step) <= tolerance * steps[members[0]]:
                members.append(i)
                break
        else:
            groups.append([i])
    return groups


def _noise_filter(shape: tuple[int, int], cutoff: float) -> tuple[np.ndarray, np.ndarray, float]:
    """High-pass beyond `cutoff` cycles/px; the FFT of its normalised square; its power."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    ramp = np.clip((np.hypot(fy, fx) - cutoff) / PTC_EDGE, 0.0, 1.0)
    high = 0.5 - 0.5 * np.cos(np.pi * ramp)
    kernel = np.fft.ifft2(high).real
    power = float((kernel**2).sum())
    return high, np.fft.fft2(kernel**2 / power), power


def noise_samples(
    image: np.ndarray, *, pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM
) -> tuple[np.ndarray, np.ndarray]:
    """Maps of the local mean and of noise-variance samples of one image, free of its structure.

    The detection OTF passes nothing beyond ``2 NA / lambda`` (about 0.31
    cycles per pixel at 62.6 nm), but a camera's noise is white up to
    Nyquist: the image high-passed beyond :data:`PTC_CUTOFF` x that cutoff is
    noise alone. For independent pixel noise of variance ``v(x)``, that
    residual ``r = h * n`` has ``E[r^2] = (h^2 * v)(x)``; so ``r^2 / sum h^2``
    samples the variance at the local mean ``(h^2 * m) / sum h^2``, with ``m``
    the image's low-pass part. Written by hand: no library estimates
    signal-dependent noise this way.

    Parameters
    ----------
    image : ndarray
        2-D image.
    pixel_size_nm : float, optional
        Its pixel size (default 62.6 nm).

    Returns
    -------
    mean, variance : ndarray
        Maps of the image's shape: the local mean, and ``r^2 / sum h^2`` (an
        unbiased, noisy sample of the local variance). Within
        :data:`PTC_BORDER` pixels of an edge they also hold the FFT's
        wrap-around; :func:`inner` cuts that away.
    """
    from biosr import optics

    image = np.asarray(image, dtype=np.float64)
    cutoff = PTC_CUTOFF * optics.cutoff_per_nm() * pixel_size_nm
    high, weights, power = _noise_filter(image.shape, min(cutoff, 0.5 - PTC_EDGE))
    residual = np.fft.ifft2(np.fft.fft2(periodic_part(image)) * high).real
    mean = np.fft.ifft2(np.fft.fft2(image - residual) * weights).real
    return mean, residual**2 / power


def periodic_part(image: np.ndarray) -> np.ndarray:
    """The periodic component of Moisan's periodic-plus-smooth decomposition.

    An FFT sees an image as periodic, and the jump between its opposite
    edges rings through all frequencies; the periodic component has no such
    jump, and differs from the image only by a smooth (low-frequency) field
    solved from the edge differences (L. Moisan, "Periodic plus smooth image
    decomposition", J. Math. Imaging Vis. 39, 2011). Written by hand: a few
    lines of FFT, in no library biosr depends on.

    Examples
    --------
    >>> ramp = np.add.outer(np.arange(8.0), np.arange(8.0))
    >>> p = periodic_part(ramp)
    >>> bool(abs(p[0] - p[-1]).max() < abs(ramp[0] - ramp[-1]).max())
    True
    """
    image = np.asarray(image, dtype=np.float64)
    ny, nx = image.shape
    edges = np.zeros_like(image)
    edges[0, :] = image[-1, :] - image[0, :]
    edges[-1, :] = -edges[0, :]
    edges[:, 0] += image[:, -1] - image[:, 0]
    edges[:, -1] -= image[:, -1] - image[:, 0]
    qy = 2.0 * np.cos(2.0 * np.pi * np.arange(ny) / ny)[:, None]
    qx = 2.0 * np.cos(2.0 * np.pi * np.arange(nx) / nx)[None, :]
    denominator = qy + qx - 4.0
    denominator[0, 0] = 1.0
    smooth = np.fft.fft2(edges) / denominator
    smooth[0, 0] = 0.0
    return image - np.fft.ifft2(smooth).real


def inner(image: np.ndarray, border: int = PTC_BORDER) -> np.ndarray:
    """The image without `border` pixels along each edge (its last two axes)."""
    return image[..., border : image.shape[-2] - border, border : image.shape[-1] - border]


#: Median of a chi-square variable of one degree of freedom (the median of r^2 / sigma^2).
_CHI2_MEDIAN = 0.454936423119572


def transfer_curve(
    means: np.ndarray, variances: np.ndarray, *, bins: int = PTC_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Bin variance samples by local mean: each bin's mean level and robust variance.

    Bins hold equal numbers of samples; a bin's variance is the median of its
    samples over the chi-square median (0.455), which an outlying pixel (hot,
    clipped) cannot pull.
    """
    order = np.argsort(means, kind="stable")
    groups = np.array_split(order, bins)
    level = np.array([means[g].mean() for g in groups])
    variance = np.array([np.median(variances[g]) / _CHI2_MEDIAN for g in groups])
    return level, variance


def fit_slope(x: np.ndarray, y: np.ndarray, intercept: float, *, iterations: int = 3) -> float:
    """Slope of ``y = slope x + intercept`` through a known intercept, weighted, robustly.

    Each bin's variance has the same relative error (equal sample counts),
    hence weights ``1 / y^2``; points more than 3 robust standard deviations
    off the line are dropped and the fit repeated.
    """
    keep = np.isfinite(x) & np.isfinite(y) & (y > 0)
    slope = 0.0
    for _ in range(iterations):
        w = 1.0 / y[keep] ** 2
        xs, ys = x[keep], y[keep] - intercept
        slope = float(np.sum(w * xs * ys) / np.sum(w * xs * xs))
        rel = (y - (slope * x + intercept)) / y
        spread = MAD_TO_SIGMA * np.median(np.abs(rel[keep])) + 1e-12
        new = keep & (np.abs(rel) <= 3.0 * spread)
        if new.sum() < 3 or np.array_equal(new, keep):
            break
        keep = new
    return slope


def dark_pixels(image: np.ndarray, *, percentile: float = DARK_PERCENTILE) -> np.ndarray:
    """Mask of the image's darkest pixels, chosen without looking at each pixel's own value.

    The image is smoothed with a Gaussian of :data:`DARK_SIGMA` pixels whose
    centre weight is set to zero, and the pixels at or below its
    `percentile` are kept: their own noise did not select them, so their
    mean and variance are unbiased.
    """
    radius = int(4 * DARK_SIGMA)
    axis = np.arange(-radius, radius + 1)
    kernel = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * DARK_SIGMA**2))
    kernel[radius, radius] = 0.0
    smooth = ndimage.convolve(np.asarray(image, dtype=np.float64), kernel / kernel.sum())
    return smooth <= np.percentile(smooth, percentile)


def photon_transfer(
    stack_or_image: np.ndarray,
    *,
    frames: int = layout.RAW_FRAMES,
    read_noise: float | None = None,
    pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM,
    bins: int = PTC_BINS,
) -> PhotonTransfer:
    """Gain, offset and read noise from one raw stack (or one widefield image).

    Method. With one stack of frames lit differently there are no repeated
    exposures to difference, so the variance is measured in space, free of
    structure: each frame's part beyond the optical cutoff is pure noise
    (:func:`noise_samples`), binned by the local mean (:func:`transfer_curve`)
    and fitted with a line (:func:`fit_line`): for Poisson photons and
    Gaussian read noise ``var = slope (mean - offset) + intercept`` with
    ``slope`` counts per photon. Slope and intercept of a line cannot tell an
    offset from a read noise; the offset is taken as the level of the darkest
    pixels (:func:`dark_level`), the intercept is the curve's variance there
    (the read-noise floor), and the read noise ``sqrt(intercept - 1/12)``. On a
    field without any signal-free pixel (haze everywhere) the offset is thus
    an upper bound and the read noise includes the darkest pixels' shot
    noise. Given a known `read_noise`, the offset is instead where the line
    falls to ``read_noise^2 + 1/12``.

    Frames whose values lie on a grid of step above 1 (:func:`count_step`:
    rescaled by their publisher) are first divided by it; frames of different
    steps are different rescalings, each with its own offset, so each such
    group gets its own dark level and the curves are fitted together in
    signal (mean minus the group's offset).

    A 2-D image is taken as a widefield image, the mean of `frames` raw
    frames in counts: its variance is the frames' divided by `frames`, so
    slope and intercept are multiplied back by `frames` and describe one raw
    frame, as for a stack. Its count step is not looked for (a mean's values
    are not on the frames' grid).

    Parameters
    ----------
    stack_or_image : ndarray
        ``(n, H, W)`` raw frames or a 2-D widefield image, in counts.
    frames : int, optional
        Frames averaged in a widefield image (default 9); ignored for a stack.
    read_noise : float, optional
        Known read noise in counts rms; None (default) measures it.
    pixel_size_nm : float, optional
        Pixel size, for the optical cutoff (default 62.6 nm).
    bins : int, optional
        Points of the curve (default :data:`PTC_BINS`).

    Returns
    -------
    PhotonTransfer
    """
    data = np.asarray(stack_or_image)
    single = data.ndim == 2
    stack = data[np.newaxis] if single else data
    found = [1.0] * len(stack) if single else [count_step(f) for f in stack]
    groups = rescale_groups(found)
    group_of = {i: g for g, members in enumerate(groups) for i in members}
    steps = [1.0] * len(stack)
    scale = float(frames) if single else 1.0
    signal, variance, floors, jitter = [], [], [], []
    offsets = [0.0] * len(groups)
    for g, members in enumerate(groups):
        step = float(np.mean([found[i] for i in members]))
        counts = stack[members].astype(np.float64) / step
        dark = dark_pixels(inner(counts).mean(axis=0))
        offsets[g] = float(inner(counts)[:, dark].mean())
        for i, frame in zip(members, counts, strict=True):
            steps[i] = step
            m, v = (inner(x) for x in noise_samples(frame, pixel_size_nm=pixel_size_nm))
            signal.append((m - offsets[g]).ravel())
            variance.append(v.ravel() * scale)
            floors.append(v[dark] * scale)
            jitter.append(m[dark] - offsets[g])
    # The read-noise floor: the variance of the darkest pixels (1/12: rounding to counts).
    floor = float(np.median(np.concatenate(floors)) / _CHI2_MEDIAN)
    quantisation = 1.0 / 12.0
    # Binned by a noisy local mean, levels just above the dark level hold the dark pixels'
    # upward noise: their level is too high for their variance. The curve is sampled on
    # the pixels clear of that spread (the intercept is known: the floor).
    signal_all, variance_all = np.concatenate(signal), np.concatenate(variance)
    clear = signal_all > PTC_CLEAR * float(np.std(np.concatenate(jitter)))
    slope = float("nan")
    if clear.sum() >= MIN_CLEAR_PIXELS:
        level, var = transfer_curve(signal_all[clear], variance_all[clear], bins=bins)
        slope = fit_slope(level, var, floor)
    if not slope > 0:
        raise DataError(
            "the photon-transfer curve has no slope (too little signal above the darkest "
            "pixels' noise); pass a brighter stack"
        )
    if read_noise is not None:
        known = read_noise**2 + quantisation
        shift = (floor - known) / slope
        offsets = [off - shift for off in offsets]
        floor = known
    return PhotonTransfer(
        gain=1.0 / slope,
        offset=float(np.mean(offsets)),
        read_noise=max(floor - quantisation, 0.0) ** 0.5,
        slope=slope,
        intercept=floor,
        count_step=tuple(steps),
        frame_offsets=tuple(offsets[group_of[i]] * steps[i] for i in range(len(stack))),
    )


# --------------------------------------------------------------------------- #
# Haze
# --------------------------------------------------------------------------- #


def background(image: np.ndarray) -> np.ndarray:
    """The haze under the filaments: the smoothed image's grey opening (see foreground_fraction)."""
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float64), FOREGROUND_SIGMA)
    return ndimage.grey_opening(smooth, size=(FOREGROUND_SIZE, FOREGROUND_SIZE))


def haze_scale_nm(image: np.ndarray, *, pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM) -> float:
    """Spatial scale of the haze: the radius where its autocorrelation falls to one half, nm.

    The haze is :func:`background`; its autocorrelation (mean removed, Hann
    window, by FFT) is averaged over rings and the first radius below 0.5
    (linearly interpolated) is returned; the field's half-diagonal if it never
    falls that low. Filaments' images are about 200 nm wide; a haze of
    micrometres is the out-of-focus and cytosolic light of the notes.
    """
    haze = background(image)
    window = np.outer(np.hanning(haze.shape[0]), np.hanning(haze.shape[1]))
    field = (haze - haze.mean()) * window
    power = np.abs(np.fft.fft2(field)) ** 2
    corr = np.fft.ifft2(power).real
    if corr[0, 0] <= 0:
        return 0.0
    ry = np.minimum(np.arange(haze.shape[0]), haze.shape[0] - np.arange(haze.shape[0]))
    rx = np.minimum(np.arange(haze.shape[1]), haze.shape[1] - np.arange(haze.shape[1]))
    radius = np.rint(np.hypot(ry[:, None], rx[None, :])).astype(int)
    ring = np.bincount(radius.ravel(), corr.ravel()) / np.bincount(radius.ravel())
    ring = ring / ring[0]
    below = np.flatnonzero(ring < 0.5)
    if below.size == 0:
        return float(len(ring) * pixel_size_nm)
    r = int(below[0])
    frac = (ring[r - 1] - 0.5) / (ring[r - 1] - ring[r])
    return float((r - 1 + frac) * pixel_size_nm)


# --------------------------------------------------------------------------- #
# The calibration record
# --------------------------------------------------------------------------- #

#: Version of the calibration JSON file.
CALIBRATION_FORMAT = 1
#: What an input is: a raw SIM stack of 9 frames, or a widefield image.
KINDS = ("raw", "widefield")
#: Smallest image side accepted (the noise filter's border and FFT need room).
MIN_SIZE = 32


@dataclass(frozen=True)
class Calibration:
    """Everything :func:`calibrate` measures on one raw stack or widefield image.

    Camera figures are in counts of the input's count grid (see
    ``count_step``); statistics are those of :func:`image_statistics`
    computed on the signal (the input in counts minus the measured offset),
    so that they do not depend on the offset's value or a rescaling.

    Attributes
    ----------
    source : str
        The file (or ``"array"``).
    kind : {'raw', 'widefield'}
        A raw SIM stack of 9 frames, or a 2-D widefield image.
    shape : tuple of int
        ``(H, W)`` of a frame.
    pixel_size_nm : float
        Pixel size (from the file, else :data:`biosr.layout.PIXEL_SIZE_WF_NM`).
    offset, photons_per_count, read_noise : float
        Camera offset (counts), gain (photons per count, as
        :data:`biosr.layout.PHOTONS_PER_COUNT`) and read noise (counts rms):
        :func:`photon_transfer`.
    ptc_slope, ptc_intercept : float
        The photon-transfer curve ``variance = slope (mean - offset) + intercept``
        per raw frame: counts per photon, and counts squared at the offset.
    count_step, frame_offsets : tuple of float
        Input units per count and offset in input units, per frame
        (:class:`PhotonTransfer`).
    snr, high_frequency_fraction, haze_ratio, foreground_fraction, photons : float
        The widefield image's :func:`image_statistics` (photons by the
        authors' definition, with their 0.6026 photons per count).
    frame_snr : float or None
        Median SNR of the raw frames (None for a widefield image).
    haze_scale_nm : float
        :func:`haze_scale_nm` of the widefield image.
    illumination : dict or None
        For a raw stack, :func:`biosr.reconstruct.parameters.estimate_parameters`'
        record (``SimParameters.to_dict()``: ``period_nm``, ``angle_deg``,
        ``phases_deg``, ``modulation`` per orientation); None when not
        measured (a widefield image, or no pattern found).
    illumination_note : str or None
        Why `illumination` is None.
    """

    source: str
    kind: str
    shape: tuple[int, int]
    pixel_size_nm: float
    offset: float
    photons_per_count: float
    read_noise: float
    ptc_slope: float
    ptc_intercept: float
    count_step: tuple[float, ...]
    frame_offsets: tuple[float, ...]
    snr: float
    high_frequency_fraction: float
    haze_ratio: float
    foreground_fraction: float
    photons: float
    frame_snr: float | None
    haze_scale_nm: float
    illumination: dict | None = None
    illumination_note: str | None = None

    def statistics(self) -> dict[str, float | None]:
        """The six compared statistics and the photons, by name (:data:`COMPARED`)."""
        return {key: getattr(self, key) for key, _ in COMPARED}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (with ``format``), the inverse of :meth:`from_dict`."""
        out: dict[str, Any] = {"format": CALIBRATION_FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """A Calibration from :meth:`to_dict`'s form.

        Raises
        ------
        ValueError
            If a field is missing, unknown or of the wrong kind, or the format
            is not :data:`CALIBRATION_FORMAT`.
        """
        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"not a calibration record of format {CALIBRATION_FORMAT}")
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names - {"format"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        try:
            values = {name: data[name] for name in names if name in data}
            for name in ("shape", "count_step", "frame_offsets"):
                values[name] = tuple(values[name])
            cal = cls(**values)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed calibration ({type(exc).__name__}: {exc})") from None
        if cal.kind not in KINDS or len(cal.shape) != 2:
            raise ValueError(f"kind must be one of {KINDS} and shape (H, W)")
        for name in ("offset", "photons_per_count", "read_noise", "ptc_slope", "snr"):
            if not isinstance(getattr(cal, name), (int, float)):
                raise ValueError(f"{name} must be a number")
        return cal


#: The statistics :func:`compare` sets side by side: field name and table label.
COMPARED = (
    ("snr", "WF SNR"),
    ("frame_snr", "frame SNR"),
    ("ptc_slope", "PTC slope [counts/photon]"),
    ("ptc_intercept", "PTC intercept [counts^2]"),
    ("high_frequency_fraction", "power beyond Nyquist/2"),
    ("haze_ratio", "haze ratio"),
    ("foreground_fraction", "foreground fraction"),
    ("photons", "photons (authors' def.)"),
)


def write_calibration(path: str | os.PathLike[str], cal: Calibration) -> Path:
    """Write `cal` as JSON to `path`, atomically; return the path."""
    path = Path(path)
    write_text(path, json.dumps(cal.to_dict(), indent=2) + "\n")
    return path


def read_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration file written by :func:`write_calibration`.

    Raises
    ------
    DataError
        If the file is missing, unreadable, not JSON or not a calibration.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Calibration.from_dict(data)
    except FileNotFoundError:
        raise DataError(
            f"{path}: calibration file not found; write one with `biosr calibrate REAL --out`"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(
            f"{path}: not a calibration file ({exc}); write one with `biosr calibrate REAL --out`"
        ) from None


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #


def read_input(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """Read a raw SIM stack or a widefield image from an MRC (BioSR's dialect) or TIFF file.

    Returns
    -------
    data : ndarray
        ``(9, H, W)`` or ``(H, W)``, as stored.
    pixel_size_nm : float
        From the file's header or tags, else :data:`biosr.layout.PIXEL_SIZE_WF_NM`.

    Raises
    ------
    DataError
        If the file is missing, neither MRC nor TIFF, or does not hold a
        valid input (:func:`check_input`).
    """
    from biosr.io import mrc, tiff

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(mrc.HEADER_BYTES)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder; pass a raw stack or widefield file") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror})") from None
    if tiff.is_tiff_header(head):
        import tifffile

        try:
            data = np.asarray(tifffile.imread(path))
        except Exception as exc:  # tifffile raises many kinds on a damaged file
            raise DataError(f"{path}: unreadable or truncated TIFF ({exc})") from None
        pixel = tiff.read_pixel_size_nm(path) or layout.PIXEL_SIZE_WF_NM
    elif path.suffix.lower() == ".mrc":
        stack = mrc.read_mrc(path)
        data, pixel = stack.data, stack.voxel_size_nm or layout.PIXEL_SIZE_WF_NM
        if data.shape[0] == 1:
            data = data[0]
    else:
        raise DataError(
            f"{path}: not an image (neither a TIFF nor an .mrc file); pass a raw SIM stack "
            "(MRC in BioSR's dialect, or TIFF) or a widefield image"
        )
    return check_input(data, path), float(pixel)


def check_input(data: np.ndarray, label: str | os.PathLike[str] = "array") -> np.ndarray:
    """Check a raw stack or widefield image; return it or raise a one-line DataError."""
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] != layout.RAW_FRAMES:
        raise DataError(
            f"{label}: a raw SIM stack has {layout.RAW_FRAMES} frames (3 orientations x 3 "
            f"phases), found {data.shape[0]}; pass a 9-frame stack or a widefield image"
        )
    if data.ndim not in (2, 3):
        raise DataError(f"{label}: expected a 9-frame stack or a 2-D image, found {data.shape}")
    if min(data.shape[-2:]) < MIN_SIZE:
        raise DataError(f"{label}: frames of {data.shape[-2:]} are below {MIN_SIZE} px a side")
    if data.dtype.kind not in "uif":
        raise DataError(f"{label}: pixel type {data.dtype} is not a number")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise DataError(f"{label}: {int((~np.isfinite(data)).sum())} pixels are NaN or infinite")
    if data.min() == data.max():
        raise DataError(f"{label}: the image is constant ({data.flat[0]}); nothing to measure")
    return data


# --------------------------------------------------------------------------- #
# Calibration
# --------------------------------------------------------------------------- #


def signal_counts(stack_or_image: np.ndarray, ptc: PhotonTransfer) -> np.ndarray:
    """The input in counts above the offset (each frame divided by its step, offset removed)."""
    data = np.asarray(stack_or_image, dtype=np.float64)
    if data.ndim == 2:
        return (data - ptc.frame_offsets[0]) / ptc.count_step[0]
    steps = np.asarray(ptc.count_step)[:, None, None]
    return (data - np.asarray(ptc.frame_offsets)[:, None, None]) / steps


def calibrate(
    stack_or_image: np.ndarray,
    *,
    pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM,
    read_noise: float | None = None,
    illumination: bool = True,
    source: str = "array",
) -> Calibration:
    """Calibrate the simulator from one raw SIM stack or widefield image.

    Parameters
    ----------
    stack_or_image : ndarray
        ``(9, H, W)`` raw frames or an ``(H, W)`` widefield image, in camera
        counts (or rescaled counts: :func:`count_step`).
    pixel_size_nm : float, optional
        Pixel size (default 62.6 nm).
    read_noise : float, optional
        Known read noise, counts rms (:func:`photon_transfer`); None measures it.
    illumination : bool, optional
        Estimate the SIM pattern of a raw stack (default True).
    source : str, optional
        Recorded as :attr:`Calibration.source`.

    Returns
    -------
    Calibration

    Raises
    ------
    DataError
        On an input :func:`check_input` refuses, or one without signal.
    """
    data = check_input(stack_or_image, source)
    try:
        ptc = photon_transfer(data, read_noise=read_noise, pixel_size_nm=pixel_size_nm)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    signal = signal_counts(data, ptc)
    raw = data.ndim == 3
    wf = signal.mean(axis=0) if raw else signal
    stats = image_statistics(wf, offset=0.0)
    illum, note = None, None
    if not raw:
        note = "a widefield image has no SIM pattern"
    elif illumination:
        from biosr.reconstruct.parameters import estimate_parameters

        try:
            illum = estimate_parameters(signal, pixel_size_nm=pixel_size_nm).to_dict()
        except DataError as exc:
            note = f"no pattern measured: {exc}"
    else:
        note = "not measured (illumination=False)"
    return Calibration(
        source=str(source),
        kind=KINDS[0] if raw else KINDS[1],
        shape=(int(data.shape[-2]), int(data.shape[-1])),
        pixel_size_nm=float(pixel_size_nm),
        offset=ptc.offset,
        photons_per_count=ptc.gain,
        read_noise=ptc.read_noise,
        ptc_slope=ptc.slope,
        ptc_intercept=ptc.intercept,
        count_step=ptc.count_step,
        frame_offsets=ptc.frame_offsets,
        snr=stats["snr"],
        high_frequency_fraction=stats["high_frequency_fraction"],
        haze_ratio=stats["haze_ratio"],
        foreground_fraction=stats["foreground_fraction"],
        photons=stats["photons"],
        frame_snr=float(np.median([frame_snr(f) for f in signal])) if raw else None,
        haze_scale_nm=haze_scale_nm(wf, pixel_size_nm=pixel_size_nm),
        illumination=illum,
        illumination_note=note,
    )


def calibrate_file(
    path: str | os.PathLike[str], *, read_noise: float | None = None, illumination: bool = True
) -> Calibration:
    """:func:`calibrate` on a file read by :func:`read_input` (its pixel size from the file)."""
    data, pixel = read_input(path)
    return calibrate(
        data,
        pixel_size_nm=pixel,
        read_noise=read_noise,
        illumination=illumination,
        source=str(path),
    )


# --------------------------------------------------------------------------- #
# Real against simulated
# --------------------------------------------------------------------------- #

#: How :func:`compare` matches a simulated level to the real data: nearest in WF SNR
#: (in log ratio), or nearest in photons (the authors' definition).
MATCH_BY = ("snr", "photons")
#: Side of the crops the comparison PNG shows, pixels.
PNG_CROP = 128


class Comparison(NamedTuple):
    """Real data against a simulated release, level by level.

    Attributes
    ----------
    real : Calibration
    levels : dict of int to Calibration
        The simulated cell's calibration at each level.
    matched : int
        The level nearest to the real data by `match_by`.
    match_by : str
        ``"snr"`` (WF SNR) or ``"photons"``.
    rows : list of (str, float or None, float or None, float or None)
        Per statistic of :data:`COMPARED`: label, real, simulated at the
        matched level, ratio simulated / real.
    real_wf, matched_wf : ndarray
        The two widefield images in counts above the offset (for the PNG).
    """

    real: Calibration
    levels: dict[int, Calibration]
    matched: int
    match_by: str
    rows: list[tuple[str, float | None, float | None, float | None]]
    real_wf: np.ndarray
    matched_wf: np.ndarray


def release_cell(root: str | os.PathLike[str], cell: int = 1) -> Path:
    """The folder of `cell` in a (simulated) raw release under `root`.

    `root` is the folder holding ``Microtubules/``, the ``Microtubules``
    folder, or a ``Cell_XXX`` folder itself.

    Raises
    ------
    DataError
        If no such cell folder is there.
    """
    root = Path(root)
    if layout.parse_cell_dir(root.name) is not None and root.is_dir():
        return root
    for folder in (*(root / name for name in layout.STRUCTURES), root):
        cell_dir = layout.release_cell_dir(folder, cell)
        if cell_dir.is_dir():
            return cell_dir
    raise DataError(
        f"{root}: no {layout.CELL_DIR.format(cell=cell)} folder of a raw release here; "
        "make one with `biosr simulate --format raw --out DIR` and pass DIR"
    )


def _wf_of(data: np.ndarray, cal: Calibration) -> np.ndarray:
    ptc = PhotonTransfer(
        cal.photons_per_count,
        cal.offset,
        cal.read_noise,
        cal.ptc_slope,
        cal.ptc_intercept,
        cal.count_step,
        cal.frame_offsets,
    )
    signal = signal_counts(data, ptc)
    return signal.mean(axis=0) if signal.ndim == 3 else signal


def compare(
    real: str | os.PathLike[str] | np.ndarray,
    simulated: str | os.PathLike[str] | dict[int, np.ndarray],
    *,
    cell: int = 1,
    levels: tuple[int, ...] | None = None,
    match_by: str = MATCH_BY[0],
    read_noise: float | None = None,
    progress: bool = False,
) -> Comparison:
    """Compare real data with a simulated raw release, level by level.

    Parameters
    ----------
    real : path-like or ndarray
        The real raw stack or widefield image (a file, or an array at 62.6 nm).
    simulated : path-like or dict
        A raw release (``biosr simulate --format raw``: the folder holding
        ``Microtubules/``, that folder, or a ``Cell_XXX`` folder), or a mapping
        from level to ``(9, H, W)`` stack.
    cell : int, optional
        Cell of the release to compare (default 1).
    levels : tuple of int, optional
        Levels to read from a release (default all of its structure's, known from the
        release folder's name; those present are read).
    match_by : {'snr', 'photons'}, optional
        The matched level is the one nearest to the real data in WF SNR
        (default; nearest in log ratio) or in photons.
    read_noise : float, optional
        The real camera's known read noise (:func:`photon_transfer`); the
        simulated levels' is always measured, as a user's would be.
    progress : bool, optional
        Show a progress bar over the levels.

    Returns
    -------
    Comparison

    Raises
    ------
    DataError
        On an unreadable real input or release file, or an unknown `match_by`.
    """
    from biosr._progress import bar
    from biosr.io.mrc import read_mrc

    if match_by not in MATCH_BY:
        raise DataError(f"match_by must be one of {', '.join(MATCH_BY)}, got {match_by!r}")
    if isinstance(real, np.ndarray):
        real_data, pixel = check_input(real), layout.PIXEL_SIZE_WF_NM
        real_cal = calibrate(real_data, read_noise=read_noise, illumination=False)
    else:
        real_data, pixel = read_input(real)
        real_cal = calibrate(
            real_data,
            pixel_size_nm=pixel,
            read_noise=read_noise,
            illumination=False,
            source=str(real),
        )
    if isinstance(simulated, dict):
        stacks = {int(k): (f"level {k}", v) for k, v in simulated.items()}
        if not stacks:
            raise DataError("no simulated stacks to compare with")
    else:
        folder = release_cell(simulated, cell)
        # The release folder is named after its structure (biosr simulate writes OUT/<Structure>).
        structure = layout.STRUCTURES.get(folder.parent.name, layout.MICROTUBULES)
        levels = structure.levels if levels is None else levels
        files = layout.release_files(folder.parent, cell, structure=structure)
        stacks = {
            lv: (str(files[f"level_{lv:02d}"]), None)
            for lv in levels
            if files[f"level_{lv:02d}"].is_file()
        }
        if not stacks:
            raise DataError(
                f"{folder}: no {structure.level_file_name(levels[0])} or other "
                "level stack; pass a raw release from `biosr simulate --format raw`"
            )
    cals: dict[int, Calibration] = {}
    wfs: dict[int, np.ndarray] = {}
    for lv in bar(stacks, enabled=progress, total=len(stacks), desc="calibrate levels"):
        label, data = stacks[lv]
        if data is None:
            stack = read_mrc(label)
            data, sim_pixel = stack.data, stack.voxel_size_nm
        else:
            sim_pixel = layout.PIXEL_SIZE_WF_NM
        data = check_input(data, label)
        cals[lv] = calibrate(data, pixel_size_nm=sim_pixel, illumination=False, source=label)
        wfs[lv] = _wf_of(data, cals[lv])

    def distance(c: Calibration) -> float:
        value, ref = (c.snr, real_cal.snr) if match_by == "snr" else (c.photons, real_cal.photons)
        return abs(np.log(max(value, 1e-12) / max(ref, 1e-12)))

    matched = min(cals, key=lambda lv: distance(cals[lv]))
    rows = []
    for key, label in COMPARED:
        r, s = getattr(real_cal, key), getattr(cals[matched], key)
        ratio = s / r if r not in (None, 0) and s is not None else None
        rows.append((label, r, s, ratio))
    return Comparison(
        real_cal, cals, matched, match_by, rows, _wf_of(real_data, real_cal), wfs[matched]
    )


def format_calibration(cal: Calibration) -> str:
    """A readable summary of a calibration (what ``biosr calibrate`` prints)."""
    lines = [
        f"{cal.source}: {cal.kind}, {cal.shape[0]} x {cal.shape[1]} px at {cal.pixel_size_nm} nm",
        f"  camera: offset {cal.offset:.2f} counts, gain {cal.photons_per_count:.4f} photons "
        f"per count, read noise {cal.read_noise:.2f} counts rms",
        f"  photon transfer: variance = {cal.ptc_slope:.4f} x (mean - offset) + "
        f"{cal.ptc_intercept:.3f} counts^2",
    ]
    steps = sorted(set(cal.count_step))
    if steps != [1.0]:
        lines.append(
            "  rescaled input: " + ", ".join(f"{s:.3f}" for s in steps) + " units per count"
        )
    frame = "n/a" if cal.frame_snr is None else f"{cal.frame_snr:.1f}"
    lines += [
        f"  SNR: widefield {cal.snr:.1f}, raw frame {frame}",
        f"  power beyond half Nyquist {100 * cal.high_frequency_fraction:.1f} %, "
        f"haze ratio {cal.haze_ratio:.3f} (scale {cal.haze_scale_nm / 1000:.2f} um), "
        f"foreground {100 * cal.foreground_fraction:.1f} %",
        f"  photons (authors' definition): {cal.photons:.1f}",
    ]
    if cal.illumination is not None:
        ill = cal.illumination
        periods = ", ".join(f"{p:.1f}" for p in ill["period_nm"])
        angles = ", ".join(f"{a:.2f}" for a in ill["angle_deg"])
        mods = ", ".join(f"{m:.2f}" for m in ill["modulation"])
        lines.append(f"  illumination: period {periods} nm; angle {angles} deg; modulation {mods}")
    else:
        lines.append(f"  illumination: {cal.illumination_note}")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def format_comparison(cmp: Comparison) -> str:
    """The per-level list and the table at the matched level (what ``--compare`` prints)."""
    lines = ["level  WF SNR  frame SNR  photons", "-----  ------  ---------  -------"]
    for lv, c in cmp.levels.items():
        mark = "  <- matched" if lv == cmp.matched else ""
        lines.append(f"{lv:5d}  {c.snr:6.1f}  {_cell(c.frame_snr):>9}  {c.photons:7.1f}{mark}")
    lines.append(
        f"real   {cmp.real.snr:6.1f}  {_cell(cmp.real.frame_snr):>9}  {cmp.real.photons:7.1f}"
    )
    by = "WF SNR" if cmp.match_by == "snr" else "photons"
    lines += ["", f"matched level {cmp.matched} (nearest in {by}):", ""]
    width = max(len(label) for label, *_ in cmp.rows)
    lines.append(f"{'statistic':<{width}}  {'real':>10}  {'simulated':>10}  {'sim/real':>8}")
    lines.append(f"{'-' * width}  {'-' * 10}  {'-' * 10}  {'-' * 8}")
    for label, r, s, ratio in cmp.rows:
        lines.append(f"{label:<{width}}  {_cell(r):>10}  {_cell(s):>10}  {_cell(ratio):>8}")
    return "\n".join(lines)


def write_comparison_png(
    path: str | os.PathLike[str], cmp: Comparison, *, crop: int = PNG_CROP
) -> Path:
    """A PNG of real and simulated widefield crops side by side at the matched level, atomically.

    Each crop is the central `crop` x `crop` pixels, shown between its own
    0.1th and 99.9th percentiles (the statistics, not the brightness, are
    what is compared).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from biosr.io.atomic import atomic_path

    panels = [
        (cmp.real_wf, f"real: {Path(cmp.real.source).name}\nWF SNR {cmp.real.snr:.1f}"),
        (
            cmp.matched_wf,
            f"simulated level {cmp.matched}\nWF SNR {cmp.levels[cmp.matched].snr:.1f}",
        ),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.4))
    for ax, (image, title) in zip(axes, panels, strict=True):
        h, w = image.shape
        y, x = max((h - crop) // 2, 0), max((w - crop) // 2, 0)
        part = image[y : y + crop, x : x + crop]
        lo, hi = np.percentile(part, [0.1, 99.9])
        ax.imshow(part, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path


class CalibrateResult(NamedTuple):
    """What :func:`run_calibrate` measured and wrote."""

    calibration: Calibration
    comparison: Comparison | None
    written: list[Path]


def run_calibrate(
    real: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    simulated: str | os.PathLike[str] | None = None,
    png: str | os.PathLike[str] | None = None,
    read_noise: float | None = None,
    match_by: str = MATCH_BY[0],
    progress: bool = False,
) -> CalibrateResult:
    """``biosr calibrate``: calibrate from a file, optionally compare, then write the outputs.

    Everything is measured before anything is written, so a bad input leaves
    no file behind; each file is written atomically.

    Raises
    ------
    DataError
        On a bad input (:func:`read_input`), or `png` without `simulated`.
    """
    if png is not None and simulated is None:
        raise DataError(f"{png}: a comparison PNG needs --compare SIMULATED_RELEASE")
    cal = calibrate_file(real, read_noise=read_noise)
    cmp = None
    if simulated is not None:
        cmp = compare(real, simulated, match_by=match_by, read_noise=read_noise, progress=progress)
    written = []
    if out is not None:
        written.append(write_calibration(out, cal))
    if png is not None and cmp is not None:
        written.append(write_comparison_png(png, cmp))
    return CalibrateResult(cal, cmp, written)
