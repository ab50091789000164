"""The arithmetic both estimation and reconstruction share: frame order, padding, band separation.

A raw 2-D SIM stack holds :data:`ORIENTATIONS` x :data:`PHASES` frames in
BioSR's order, orientation-major (``frame = 3 * orientation + phase``, as
:mod:`biosr.simulate.imaging` writes them and the real release stores them).
Frame ``j`` of an orientation with pattern ``1 + m cos(2 pi k.x + phi_j)`` has
the spectrum ``H S(f) + (m / 2) e^{i phi_j} H S(f - k) + (m / 2) e^{-i phi_j}
H S(f + k)``; :func:`separation_matrix` inverts that 3 x 3 mixing.

Frames are padded to a fast FFT length with a linear ramp to their mean
(:func:`pad_frames`), so the FFT sees a periodic image without an edge cross
and without mirrored stripes; results are cropped back. Positions ``x`` are in
nm from the centre of the frame (raw pixel ``((N - 1) / 2, (N - 1) / 2)``), on
the raw grid and on the 2x grid alike (the 2x grid of a zero-padded spectrum
puts its pixel ``2 i`` on raw pixel ``i``). The centre, not a corner, is the
origin of the phases: the correlations measure a phase where the image is, so
a corner's phase would carry the wave vector's small error times the distance.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft

from biosr import layout, optics
from biosr.errors import DataError

#: Pattern orientations per stack.
ORIENTATIONS = 3
#: Phase steps per orientation.
PHASES = 3
#: Frames per stack (orientation-major).
FRAMES = ORIENTATIONS * PHASES
assert FRAMES == layout.RAW_FRAMES

#: Nominal phase steps of an orientation, radians (before any offset).
NOMINAL_PHASES = tuple(2.0 * np.pi * j / PHASES for j in range(PHASES))

#: Fraction of the side taken by each ramp of the estimation's edge window.
ESTIMATION_TAPER = 0.1

#: The measured OTF ends where it first falls below this (its tail beyond is noise).
OTF_TAIL = 0.01

#: Smallest frame side accepted, raw pixels.
MIN_SIZE = 32

#: Raw pixels of ramp padding added on each side before the FFT (at least).
PAD_MARGIN = 16


class Padded(NamedTuple):
    """A stack padded for the FFT, and where the original lies in it.

    Attributes
    ----------
    spectra : ndarray
        ``(9, P, P)`` complex64 FFTs of the padded frames (raw grid).
    size : int
        Side ``P`` of the padded frames.
    offset : int
        Index in the padded frame of the original pixel ``(0, 0)``.
    shape : tuple of int
        The original ``(H, W)``.
    """

    spectra: np.ndarray
    size: int
    offset: int
    shape: tuple[int, int]


def check_stack(stack: np.ndarray) -> np.ndarray:
    """Check a raw SIM stack's shape and values; return it as float32.

    Raises
    ------
    DataError
        If it is not ``(9, N, N)`` with N >= 32, or holds NaN or infinity.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.shape[0] != FRAMES:
        raise DataError(
            f"a raw SIM stack has {FRAMES} frames ({ORIENTATIONS} orientations x {PHASES} "
            f"phases), got shape {stack.shape}; pass a 2-D SIM stack in BioSR's frame order"
        )
    if stack.shape[1] != stack.shape[2] or stack.shape[1] < MIN_SIZE:
        raise DataError(
            f"frames must be square and at least {MIN_SIZE} px, got {stack.shape[1]} x "
            f"{stack.shape[2]}; crop the stack to a square"
        )
    stack = stack.astype(np.float32, copy=False)
    if not np.isfinite(stack).all():
        raise DataError("the stack holds NaN or infinite values; these frames cannot be used")
    return stack


def pad_frames(stack: np.ndarray, *, margin: int = PAD_MARGIN, taper: float = 0.0) -> Padded:
    """Pad each frame to a square fast FFT length and FFT it.

    Parameters
    ----------
    stack : ndarray
        ``(9, N, N)`` raw frames (any real dtype).
    margin : int, optional
        Minimum padding on each side in raw pixels.
    taper : float, optional
        0: pad with a linear ramp to each frame's mean (the whole image is kept,
        for reconstruction). Above 0: subtract the stack's mean, multiply by a
        cosine edge window whose ramps take this fraction of the side, and pad
        with zeros: every frame then sees the same window, so band ratios stay
        exact (for estimation).

    Returns
    -------
    Padded
    """
    stack = np.asarray(stack, dtype=np.float32)
    _, ny, nx = stack.shape
    size = scipy.fft.next_fast_len(max(ny, nx) + 2 * margin, real=False)
    if size % 2:  # an even side keeps the 2x grid's Nyquist row simple
        size = scipy.fft.next_fast_len(size + 1, real=False)
    before = (size - ny) // 2
    widths = ((0, 0), (before, size - ny - before), (before, size - nx - before))
    if taper > 0:
        edge = max(1, round(taper * ny))
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(edge) + 0.5) / edge)
        window = np.ones(ny, dtype=np.float32)
        window[:edge], window[ny - edge :] = ramp, ramp[::-1]
        windowed = (stack - stack.mean()) * (window[:, None] * window[None, :])
        padded = np.pad(windowed, widths)
    else:
        padded = np.empty((stack.shape[0], size, size), dtype=np.float32)
        for i, frame in enumerate(stack):
            padded[i] = np.pad(frame, widths[1:], mode="linear_ramp", end_values=frame.mean())
    spectra = scipy.fft.fft2(padded, workers=1).astype(np.complex64, copy=False)
    return Padded(spectra, size, before, (ny, nx))


def separation_matrix(phases: np.ndarray) -> np.ndarray:
    """Matrix taking the 3 frames of an orientation to its bands ``(C0, C+, C-)``.

    Parameters
    ----------
    phases : array_like
        The 3 pattern phases ``phi_j`` in radians.

    Returns
    -------
    ndarray
        ``(3, 3)`` complex: ``bands = M @ frames``, where ``C+`` holds
        ``(m / 2) H S(f - k)`` and ``C-`` its mirror ``(m / 2) H S(f + k)``.

    Examples
    --------
    >>> m = separation_matrix(np.array(NOMINAL_PHASES))
    >>> bool(np.allclose(m[0], 1 / 3)), bool(np.allclose(m[2], m[1].conj()))
    (True, True)
    """
    phases = np.asarray(phases, dtype=np.float64)
    mixing = np.stack([np.ones_like(phases), np.exp(1j * phases), np.exp(-1j * phases)], axis=1)
    try:
        return np.linalg.inv(mixing)
    except np.linalg.LinAlgError:
        raise ValueError(f"phases {np.rad2deg(phases)} deg do not separate the bands") from None


def combine(coefficients: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """``sum_j coefficients[j] * frames[j]`` (complex64), the bands from one separation row."""
    out = frames[0] * np.complex64(coefficients[0])
    for c, frame in zip(coefficients[1:], frames[1:], strict=True):
        out += frame * np.complex64(c)
    return out


def fine_spectrum(raw: np.ndarray) -> np.ndarray:
    """Zero-pad a ``(P, P)`` raw-grid spectrum onto the ``(2P, 2P)`` grid (FFT layout).

    The raw grid's Nyquist row and column are dropped (the OTF is zero there).
    """
    p = raw.shape[-1]
    h = p // 2
    out = np.zeros((*raw.shape[:-2], 2 * p, 2 * p), dtype=raw.dtype)
    out[..., :h, :h] = raw[..., :h, :h]
    out[..., :h, -h + 1 :] = raw[..., :h, h + 1 :]
    out[..., -h + 1 :, :h] = raw[..., h + 1 :, :h]
    out[..., -h + 1 :, -h + 1 :] = raw[..., h + 1 :, h + 1 :]
    return out


def coordinates_nm(padded: Padded, pixel_size_nm: float, *, fine: bool) -> np.ndarray:
    """Positions in nm, from the original frame's centre, of a padded grid's pixels on one axis.

    The raw grid's (``fine=False``) or the 2x grid's (``fine=True``).
    """
    centre = padded.offset + (padded.shape[0] - 1) / 2.0
    index = np.arange(2 * padded.size) / 2.0 if fine else np.arange(padded.size)
    return (index - centre) * pixel_size_nm


def wave(k_per_nm: tuple[float, float], y_nm: np.ndarray, x_nm: np.ndarray) -> np.ndarray:
    """``exp(2 pi i k.x)`` on the grid of positions `y_nm` x `x_nm` (complex64)."""
    ey = np.exp(2j * np.pi * k_per_nm[0] * y_nm).astype(np.complex64)
    ex = np.exp(2j * np.pi * k_per_nm[1] * x_nm).astype(np.complex64)
    return ey[:, None] * ex[None, :]


def otf_cutoff_per_nm(kind: str) -> float:
    """Frequency where the detection OTF of `kind` ends, cycles per nm.

    The Airy OTF's cutoff ``2 NA / lambda``; for the measured one, where it
    first falls below :data:`OTF_TAIL` (beyond, its values are noise).
    """
    if kind == "measured":
        k, values = optics.measured_otf_profile()
        return float(k[int(np.argmax(values < OTF_TAIL))])
    if kind == "airy":
        return optics.cutoff_per_nm()
    raise ValueError(f"unknown OTF kind {kind!r}; choose one of {', '.join(optics.OTF_KINDS)}")


def band_otf(shape: tuple[int, int], pixel_size_nm: float, kind: str) -> np.ndarray:
    """:func:`biosr.optics.otf` of `kind` (float32), zero beyond :func:`otf_cutoff_per_nm`."""
    h = optics.otf(shape, pixel_size_nm, kind=kind)
    fy, fx = optics.frequency_grid(shape, pixel_size_nm)
    h[np.hypot(fy, fx) > otf_cutoff_per_nm(kind)] = 0.0
    return h.astype(np.float32)


def shifted(array: np.ndarray, shift_px: tuple[float, float]) -> np.ndarray:
    """`array` (FFT layout) evaluated at ``f - shift``, the shift rounded to whole pixels.

    For smooth weights (the OTF, masks) only: the data bands are shifted
    exactly by a phase ramp in real space.
    """
    return np.roll(array, (round(shift_px[0]), round(shift_px[1])), axis=(0, 1))
