"""Intensity normalisation, one vocabulary everywhere: stored, min-max and percentile.

The build (each patch it writes), the loader (each image it hands out), the
scoring protocols (GT and prediction before metrics) and predict (each input)
all normalise the same way, here; what differs between them (percentiles,
clipping, the arithmetic's precision) is a keyword argument of
:func:`normalize`. Written by hand because it is two NumPy reductions and an
affine map per image, and the libraries that have one (CSBDeep's
``normalize``, scikit-image's ``rescale_intensity``) differ in how a flat
image, clipping and batches are handled. Only NumPy is imported, so that
:mod:`biosr.learn` and :mod:`biosr.evaluate` can both stand on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from biosr.errors import DataError

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

#: Normalisations, one vocabulary everywhere: as stored (no change), each image's
#: minimum and maximum to 0 and 1, or its lower and upper percentiles to 0 and 1.
NORMALIZATIONS: tuple[str, ...] = ("stored", "minmax", "percentile")

#: Default lower and upper percentiles of ``"percentile"`` (CSBDeep's, for loading and the
#: ``care`` scoring protocol).
PERCENTILES: tuple[float, float] = (0.1, 99.9)

#: Predict's choice for inputs of unknown range: ``"stored"`` for an image already within
#: [0, 1] (a dataset patch), else ``"minmax"`` (e.g. a raw field in camera counts).
AUTO = "auto"

#: What predict accepts for its inputs: :data:`AUTO` and every normalisation.
INPUT_NORMALIZATIONS: tuple[str, ...] = (AUTO, *NORMALIZATIONS)


def check_normalization(method: str, *, choices: tuple[str, ...] = NORMALIZATIONS) -> str:
    """Return `method` if it is one of `choices`.

    Raises
    ------
    DataError
        Naming the unknown method and the valid ones.
    """
    if method not in choices:
        raise DataError(f"unknown normalisation {method!r}; valid: {', '.join(choices)}")
    return method


def resolve_auto(image: np.ndarray) -> str:
    """What :data:`AUTO` means for `image`: ``"stored"`` if within [0, 1], else ``"minmax"``.

    Examples
    --------
    >>> resolve_auto(np.array([[0.1, 0.9]])), resolve_auto(np.array([[100.0, 300.0]]))
    ('stored', 'minmax')
    """
    return "stored" if float(np.min(image)) >= 0.0 and float(np.max(image)) <= 1.0 else "minmax"


def normalize(
    images: np.ndarray,
    method: str = "minmax",
    *,
    percentiles: tuple[float, float] = PERCENTILES,
    clip: bool = False,
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Normalise an image, or each image of a batch ``(..., H, W)`` on its own.

    Parameters
    ----------
    images : ndarray
        2-D image, or a batch whose last two axes are one image.
    method : {'stored', 'minmax', 'percentile'}
        ``"stored"``: values unchanged (only cast to `dtype`); ``"minmax"``:
        ``(x - min) / (max - min)``; ``"percentile"``: ``(x - p_lo) / (p_hi - p_lo)``.
        An image whose range is flat (``max <= min``, ``p_hi <= p_lo``) is only
        shifted (``x - lo``): a constant image becomes zeros, never NaN.
    percentiles : tuple of float, optional
        ``(p_lo, p_hi)``, 0..100, of ``"percentile"`` (default :data:`PERCENTILES`).
    clip : bool, optional
        Clip the result to [0, 1] (default False, as CSBDeep; the build clips).
    dtype : dtype, optional
        Precision of the arithmetic and of the result (default float32;
        scoring works in float64).

    Returns
    -------
    ndarray
        Array of `images`' shape and `dtype`; `images` itself when it is
        ``"stored"`` and already of `dtype` (and `clip` is False).

    Raises
    ------
    DataError
        On an unknown `method`.

    Examples
    --------
    >>> normalize(np.array([[2.0, 4.0], [6.0, 10.0]])).ravel().tolist()
    [0.0, 0.25, 0.5, 1.0]
    >>> normalize(np.full((2, 2), 5.0)).ravel().tolist()
    [0.0, 0.0, 0.0, 0.0]
    >>> normalize(np.arange(5.0)[None], "percentile", percentiles=(25, 75)).tolist()
    [[-0.5, 0.0, 0.5, 1.0, 1.5]]
    """
    check_normalization(method)
    x = np.asarray(images, dtype=dtype)
    if method == "stored":
        return np.clip(x, 0.0, 1.0) if clip else x
    if method == "minmax":
        lo = x.min(axis=(-2, -1), keepdims=True)
        hi = x.max(axis=(-2, -1), keepdims=True)
    else:
        flat = x.reshape(*x.shape[:-2], -1)
        lo, hi = np.percentile(flat, percentiles, axis=-1, keepdims=True)
        lo, hi = lo[..., np.newaxis], hi[..., np.newaxis]
    span = hi - lo
    out = (x - lo) / np.where(span > 0, span, 1).astype(x.dtype, copy=False)
    return np.clip(out, 0.0, 1.0, out=out) if clip else out
