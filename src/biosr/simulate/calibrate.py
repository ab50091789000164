"""Calibration of the simulator from real data: image statistics, photon transfer, illumination.

The statistics are the estimators of ``DATASET_NOTES.md`` section 6, written
out here because they are definitions (the notes' SNR, the authors' photon
count) that no library ships; the simulator is tuned and tested against real
data with exactly these functions, so they are the one source of truth for
"how real data looks".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from biosr import layout
from biosr.errors import DataError

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
PTC_CLEAR = 4.0
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
    level, var = transfer_curve(np.concatenate(signal), np.concatenate(variance), bins=bins)
    # Binned by a noisy local mean, bins just above the dark level hold the dark pixels'
    # upward noise: their level is too high for their variance. The slope is fitted on
    # the bins clear of that spread (the intercept is known: the floor).
    spread = float(np.std(np.concatenate(jitter)))
    clear = level > PTC_CLEAR * spread
    slope = fit_slope(level[clear], var[clear], floor) if clear.sum() >= 3 else float("nan")
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
