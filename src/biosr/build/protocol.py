"""The DL-SR patch protocol on arrays: widefield, foreground mask, crops, rotation, flips, scaling.

Plain functions on numpy arrays, no files: :mod:`biosr.build.builder` reads the
release, draws the random choices and writes the patches. Everything follows
the authors' MATLAB scripts as described in ``DATASET_NOTES.md`` section 3.

Coordinates: the GT (SIM reconstruction) has `s` times the sampling of the
widefield (WF) image (``s = 2``; 3 for nonlinear SIM), and WF pixel ``i``
covers GT pixels ``s i`` .. ``s i + s - 1``. In pixel-centre coordinates a WF
position ``u`` is the GT position ``s u + (s - 1) / 2``: ``2 u + 0.5`` at 2x,
``3 u + 1`` at 3x. Rotated patches are sampled with
:func:`scipy.ndimage.affine_transform` (bilinear, ``order=1``) straight from
the 1.5x region around the crop centre, into the output patch only: the same
values as rotating the whole region and keeping its centre (bilinear
interpolation is local, and the rotated patch lies inside the region for
every angle), at a quarter of the work. s x s binning is one line of numpy; no
library function does exactly it. Normalisation is :mod:`biosr.normalize`'s,
with the build's conventions (:func:`normalize`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from biosr import normalize as norm
from biosr.normalize import PERCENTILES

#: Flip variants, in index order: none, up-down, left-right, both.
FLIP_NAMES: tuple[str, ...] = ("none", "ud", "lr", "both")


def widefield(stack: np.ndarray) -> np.ndarray:
    """Widefield image of a raw SIM stack: the mean of its frames, float32.

    Any number of frames: 9 (3 orientations x 3 phases) or 25 for nonlinear
    SIM (5 x 5). Per-patch normalisation makes the mean and DL-SR's sum the
    same patch.

    Parameters
    ----------
    stack : ndarray
        ``(frames, ny, nx)`` raw SIM frames (any numeric dtype).

    Returns
    -------
    ndarray
        ``(ny, nx)`` float32 mean (computed in float64).

    Examples
    --------
    >>> widefield(np.array([[[1, 2]], [[3, 4]]], dtype=np.uint16))
    array([[2., 3.]], dtype=float32)
    """
    return np.asarray(stack, dtype=np.float64).mean(axis=0).astype(np.float32)


def foreground_mask(
    gt_on_wf: np.ndarray,
    *,
    threshold: float = 1e-2,
    min_pixels: int = 1000,
    factor: float = 0.8,
    background_sigma: float = 50.0,
) -> np.ndarray:
    """Foreground mask of a GT image resized to the WF grid, as DL-SR computes it.

    The image is min-max scaled to [0, 1], smoothed by a 3x3 Gaussian
    (sigma 0.5, MATLAB's ``fspecial`` default), a large-scale background
    (Gaussian, sigma `background_sigma`, 100 px window) is subtracted, and the
    result thresholded at `threshold`; the threshold is multiplied by
    `factor` until at least `min_pixels` pixels pass (or it reaches 1e-12).

    Parameters
    ----------
    gt_on_wf : ndarray
        2-D GT image on the WF grid (see :func:`gt_to_wf_grid`).
    threshold, min_pixels, factor, background_sigma
        The protocol's parameters (published values as defaults).

    Returns
    -------
    ndarray of bool
        The mask, same shape as the input.
    """
    img = norm.normalize(gt_on_wf, "minmax", dtype=np.float64)
    fine = ndimage.gaussian_filter(img, 0.5, truncate=2.0, mode="nearest")
    background = ndimage.gaussian_filter(img, background_sigma, truncate=1.0, mode="nearest")
    signal = fine - background
    target = min(min_pixels, signal.size)
    while True:
        mask = signal > threshold
        if mask.sum() >= target or threshold < 1e-12:
            return mask
        threshold *= factor


def gt_to_wf_grid(gt: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a GT image onto the WF grid with bicubic interpolation (for the mask only)."""
    return resize(gt.astype(np.float64), shape, order=3, mode="edge", anti_aliasing=False)


def valid_centres(mask: np.ndarray, half: int) -> np.ndarray:
    """Mask pixels whose ``[c - half, c + half)`` region lies inside the image, as ``(n, 2)``.

    Falls back to every position where the region fits if no mask pixel does.
    """
    ny, nx = mask.shape
    if ny < 2 * half or nx < 2 * half:
        raise ValueError(f"image {ny}x{nx} is smaller than a {2 * half} px crop region")
    fits = np.zeros_like(mask, dtype=bool)
    fits[half : ny - half + 1, half : nx - half + 1] = True
    centres = np.argwhere(mask & fits)
    return centres if len(centres) else np.argwhere(fits)


def region_half(patch: int, rotate: bool) -> int:
    """Half-side of the region cut around a crop centre: 1.5x the patch if rotating."""
    return math.ceil(1.5 * patch / 2) if rotate else patch // 2


def rotated_patch(
    image: np.ndarray, centre: tuple[float, float], size: int, angle_deg: float
) -> np.ndarray:
    """Sample a ``size x size`` patch rotated by `angle_deg` around `centre`, bilinearly.

    Parameters
    ----------
    image : ndarray
        2-D source image.
    centre : tuple of float
        Patch centre in pixel-centre coordinates (row, column).
    size : int
        Side of the output patch.
    angle_deg : float
        Rotation in degrees (counter-clockwise as displayed). 0 gives a plain crop.

    Returns
    -------
    ndarray
        float32 ``(size, size)`` patch.
    """
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    matrix = np.array([[cos, sin], [-sin, cos]])
    out_centre = np.full(2, (size - 1) / 2.0)
    offset = np.asarray(centre, dtype=np.float64) - matrix @ out_centre
    out = ndimage.affine_transform(
        image.astype(np.float32, copy=False),
        matrix,
        offset=offset,
        output_shape=(size, size),
        order=1,
        mode="nearest",
    )
    return out.astype(np.float32, copy=False)


def gt_scale_of(wf: np.ndarray, gt: np.ndarray) -> int:
    """GT side over WF side, checked to be a whole number >= 1 on both axes.

    Raises
    ------
    ValueError
        If the GT is not a whole multiple of the WF image on both axes.
    """
    (wy, wx), (gy, gx) = wf.shape[-2:], gt.shape[-2:]
    scale = gy // wy if wy else 0
    if scale < 1 or (gy, gx) != (scale * wy, scale * wx):
        raise ValueError(f"GT {gy}x{gx} is not a whole multiple of the WF {wy}x{wx}")
    return scale


def crop_pair(
    wf: np.ndarray,
    gt: np.ndarray,
    corner: tuple[int, int],
    patch: int,
    angle_deg: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a WF patch and its matching GT patch at the same place and angle.

    Parameters
    ----------
    wf : ndarray
        2-D widefield image.
    gt : ndarray
        2-D GT with exactly `s` times the WF's shape (2; 3 for nonlinear SIM).
    corner : tuple of int
        Top-left WF pixel of the (unrotated) patch; its centre is
        ``corner + patch / 2`` in pixel-edge coordinates.
    patch : int
        WF patch side; the GT patch is ``s * patch``.
    angle_deg : float
        Rotation angle; 0 means a plain slice (no interpolation).

    Returns
    -------
    tuple of ndarray
        ``(wf_patch, gt_patch)``, float32, ``patch`` and ``s * patch`` square.
    """
    s = gt_scale_of(wf, gt)
    y, x = int(corner[0]), int(corner[1])
    if angle_deg % 360 == 0:
        wf_p = wf[y : y + patch, x : x + patch]
        gt_p = gt[s * y : s * y + s * patch, s * x : s * x + s * patch]
        return wf_p.astype(np.float32), gt_p.astype(np.float32)
    c_wf = (y + (patch - 1) / 2.0, x + (patch - 1) / 2.0)
    shift = (s - 1) / 2.0  # WF pixel centre u is GT position s u + (s - 1) / 2
    c_gt = (s * c_wf[0] + shift, s * c_wf[1] + shift)
    return (
        rotated_patch(wf, c_wf, patch, angle_deg),
        rotated_patch(gt, c_gt, s * patch, angle_deg),
    )


def flip(image: np.ndarray, variant: int) -> np.ndarray:
    """Apply flip `variant` (0 none, 1 up-down, 2 left-right, 3 both)."""
    if variant & 1:
        image = image[::-1, :]
    if variant & 2:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def bin_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """`factor` x `factor` mean binning (GT onto the WF grid), float32 (computed in float64).

    Examples
    --------
    >>> bin_mean(np.arange(36, dtype=np.float32).reshape(6, 6), 3)
    array([[ 7., 10.],
           [25., 28.]], dtype=float32)
    """
    ny, nx = image.shape
    f = int(factor)
    out = image.reshape(ny // f, f, nx // f, f).astype(np.float64).mean(axis=(1, 3))
    return out.astype(np.float32)


def bin2(image: np.ndarray) -> np.ndarray:
    """2x2 mean binning (:func:`bin_mean` by 2).

    Examples
    --------
    >>> bin2(np.arange(16, dtype=np.float32).reshape(4, 4))
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    return bin_mean(image, 2)


def normalize(
    image: np.ndarray, method: str = "minmax", *, percentiles: tuple[float, float] = PERCENTILES
) -> np.ndarray:
    """A patch normalised as the build writes it, float32.

    :func:`biosr.normalize.normalize` in float64, clipped to [0, 1] (unless
    ``"stored"``), returned as float32.

    Parameters
    ----------
    image : ndarray
        2-D patch.
    method : {'stored', 'minmax', 'percentile'}
        ``minmax``: to [0, 1] by min and max (the published data);
        ``percentile``: ``(x - p_lo) / (p_hi - p_lo)`` clipped to [0, 1];
        ``stored``: values as read (WF in camera counts).
    percentiles : tuple of float, optional
        ``(p_lo, p_hi)`` for ``percentile``.

    Returns
    -------
    ndarray
        float32 patch.

    Examples
    --------
    >>> normalize(np.array([[1.0, 3.0], [5.0, 9.0]])).tolist()
    [[0.0, 0.25], [0.5, 1.0]]
    """
    out = norm.normalize(
        image, method, percentiles=percentiles, clip=method != "stored", dtype=np.float64
    )
    return out.astype(np.float32)
