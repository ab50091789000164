"""Paired transforms: the same geometric change applied to input (WF) and target (GT).

A transform is any callable ``t(wf, gt, rng) -> (wf, gt)`` on *batches*:
``wf`` is an ``(N, H, W)`` array, ``gt`` an ``(N, s*H, s*W)`` array (``s``, the
GT/WF scale, is 1 for the published release and 2 for DL-SR geometry) and
``rng`` a :class:`numpy.random.Generator` that holds every random choice. One
image is a batch of one. :class:`biosr.learn.data.BioSR` calls transforms with a
generator seeded from its seed, the epoch and the indices it loads, so a
result never depends on worker count or order.

The eight symmetries of the square (the dihedral group D4) are written here by
hand, as one table of slicing views (:data:`DIHEDRAL_VIEWS`, which
:mod:`biosr.learn.data` also uses when it copies from disk): each is one ``rot90``
and one ``flip`` of NumPy, but pairing them
with per-sample random choices over a batch (grouped so that each group is one
vectorised copy) is specific to this package. :class:`Normalize` applies
:func:`biosr.normalize.normalize` to both images of a pair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from biosr import normalize as norm

#: Number of symmetries of the square: 4 rotations, each with or without a mirror.
N_DIHEDRAL = 8


def _swap(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


#: Symmetry ``k`` of :func:`dihedral` as a plain slicing view of the last two axes
#: (``k % 4`` quarter turns counter-clockwise, then a left-right mirror if ``k >= 4``).
DIHEDRAL_VIEWS: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    lambda m: m,
    lambda m: _swap(m)[..., ::-1, :],
    lambda m: m[..., ::-1, ::-1],
    lambda m: _swap(m)[..., :, ::-1],
    lambda m: m[..., :, ::-1],
    lambda m: _swap(m)[..., ::-1, ::-1],
    lambda m: m[..., ::-1, :],
    _swap,
)

Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """Apply symmetry `k` (0..7) of the square to the last two axes of `image`.

    ``k % 4`` counter-clockwise quarter turns, then, if ``k >= 4``, a
    left-right mirror. ``k = 0`` is the identity. Returns a view.

    Parameters
    ----------
    image : ndarray
        Array whose last two axes are the image plane (any leading axes).
    k : int
        Which symmetry, 0..7.

    Returns
    -------
    ndarray
        A view of `image`.

    Examples
    --------
    >>> a = np.arange(4).reshape(2, 2)
    >>> dihedral(a, 1).tolist(), dihedral(a, 4).tolist()
    ([[1, 3], [0, 2]], [[1, 0], [3, 2]])
    """
    if not 0 <= int(k) < N_DIHEDRAL:
        raise ValueError(f"dihedral index {k!r} out of range 0..{N_DIHEDRAL - 1}")
    return DIHEDRAL_VIEWS[int(k)](image)


def dihedral_inverse(k: int) -> int:
    """The symmetry that undoes symmetry `k` (for test-time augmentation).

    Examples
    --------
    >>> a = np.arange(9).reshape(3, 3)
    >>> all((dihedral(dihedral(a, k), dihedral_inverse(k)) == a).all() for k in range(8))
    True
    """
    k = int(k)
    return (4 - k) % 4 if k < 4 else k


def dihedral_batch(images: np.ndarray, ks: Sequence[int] | np.ndarray) -> np.ndarray:
    """Apply symmetry ``ks[i]`` to ``images[i]`` for a batch ``(N, ..., H, W)`` of square images.

    Samples with the same symmetry are handled together, so a batch costs at
    most eight vectorised copies. Returns a new contiguous array.
    """
    ks = np.asarray(ks, dtype=np.intp)
    if images.shape[-1] != images.shape[-2] and np.any(ks % 2 == 1):
        raise ValueError(f"odd dihedral symmetries need square images, got {images.shape}")
    out = np.empty_like(images)
    for k in np.unique(ks):
        sel = np.flatnonzero(ks == k)
        out[sel] = dihedral(images[sel], int(k))
    return out


class Dihedral:
    """One of the eight symmetries of the square, random per sample or fixed.

    Parameters
    ----------
    k : int or None, optional
        None (default): draw a symmetry per sample, uniformly from all eight.
        0..7: always apply that one (see :func:`dihedral`).

    Examples
    --------
    >>> wf, gt = np.arange(4.0).reshape(1, 2, 2), np.arange(16.0).reshape(1, 4, 4)
    >>> w, g = Dihedral(1)(wf, gt, np.random.default_rng(0))
    >>> w[0].tolist()
    [[1.0, 3.0], [0.0, 2.0]]
    """

    def __init__(self, k: int | None = None) -> None:
        if k is not None and not 0 <= int(k) < N_DIHEDRAL:
            raise ValueError(f"dihedral index {k!r} out of range 0..{N_DIHEDRAL - 1}")
        self.k = None if k is None else int(k)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The symmetries for a batch of `n` samples."""
        if self.k is not None:
            return np.full(n, self.k, dtype=np.intp)
        return rng.integers(0, N_DIHEDRAL, size=n)

    def __call__(
        self, wf: np.ndarray, gt: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        ks = self.draw(len(wf), rng)
        return dihedral_batch(wf, ks), dihedral_batch(gt, ks)

    def __repr__(self) -> str:
        return f"Dihedral(k={self.k})"


class RandomCrop:
    """Crop a random ``size`` x ``size`` window of WF and the matching window of GT.

    The GT window is ``s * size`` wide at ``s`` times the WF offset, where ``s``
    is the GT/WF scale of the batch (1 or 2), so the pair stays aligned.
    Offsets are drawn per sample.

    Parameters
    ----------
    size : int
        Side of the WF crop in pixels (at most the WF side).
    """

    def __init__(self, size: int) -> None:
        if int(size) < 1:
            raise ValueError(f"crop size must be positive, got {size!r}")
        self.size = int(size)

    def __call__(
        self, wf: np.ndarray, gt: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n, h, w = wf.shape[0], wf.shape[-2], wf.shape[-1]
        s = gt_scale(wf, gt)
        c = self.size
        if c > min(h, w):
            raise ValueError(f"crop size {c} larger than the images ({h} x {w})")
        ys = rng.integers(0, h - c + 1, size=n)
        xs = rng.integers(0, w - c + 1, size=n)
        wf_out = np.empty((*wf.shape[:-2], c, c), dtype=wf.dtype)
        gt_out = np.empty((*gt.shape[:-2], s * c, s * c), dtype=gt.dtype)
        for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist(), strict=True)):
            wf_out[i] = wf[i, ..., y : y + c, x : x + c]
            gt_out[i] = gt[i, ..., s * y : s * (y + c), s * x : s * (x + c)]
        return wf_out, gt_out

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size})"


class Normalize:
    """Normalise WF and GT, each image on its own (see :func:`biosr.normalize.normalize`).

    Parameters
    ----------
    mode : {'stored', 'minmax', 'percentile'}
        As stored (no change), min-max to [0, 1], or percentiles to 0 and 1.
    percentiles : tuple of float, optional
        Lower and upper percentile for ``mode="percentile"``
        (default :data:`biosr.normalize.PERCENTILES`).
    """

    def __init__(self, mode: str, percentiles: tuple[float, float] = norm.PERCENTILES) -> None:
        norm.check_normalization(mode)
        self.mode = mode
        self.percentiles = (float(percentiles[0]), float(percentiles[1]))

    def __call__(
        self, wf: np.ndarray, gt: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return (
            norm.normalize(wf, self.mode, percentiles=self.percentiles),
            norm.normalize(gt, self.mode, percentiles=self.percentiles),
        )

    def __repr__(self) -> str:
        return f"Normalize(mode={self.mode!r}, percentiles={self.percentiles})"


class Compose:
    """Apply paired transforms in order.

    Examples
    --------
    >>> t = Compose([RandomCrop(64), Dihedral()])
    >>> wf, gt = np.zeros((2, 128, 128)), np.zeros((2, 256, 256))
    >>> [a.shape for a in t(wf, gt, np.random.default_rng(0))]
    [(2, 64, 64), (2, 128, 128)]
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(
        self, wf: np.ndarray, gt: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        for t in self.transforms:
            wf, gt = t(wf, gt, rng)
        return wf, gt

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def gt_scale(wf: np.ndarray, gt: np.ndarray) -> int:
    """The integer GT/WF size ratio of a pair (or batch); raises ValueError if it is not one."""
    h, w = wf.shape[-2:]
    gh, gw = gt.shape[-2:]
    s = gh // h if h else 0
    if s < 1 or gh != s * h or gw != s * w:
        raise ValueError(f"GT {gt.shape[-2:]} is not an integer multiple of WF {wf.shape[-2:]}")
    return s
