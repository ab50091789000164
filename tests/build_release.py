"""A tiny hand-made original release for the builder's tests: blurred random lines.

Ground truth: thin random lines on the GT grid (2x the raw grid). Raw frames:
the GT blurred by a Gaussian "widefield PSF", binned 2x2 onto the raw grid,
plus a camera offset and Poisson noise. The truth is known exactly, so the
tests can check that patches stay aligned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.draw import line_aa

from biosr import layout
from biosr.io.mrc import write_mrc

#: Sigma of the widefield blur, in raw (WF) pixels.
WF_SIGMA = 1.6


def make_gt(size: int, rng: np.random.Generator, lines: int = 14) -> np.ndarray:
    """A ``2*size`` square float32 GT of thin random lines."""
    side = 2 * size
    img = np.zeros((side, side), dtype=np.float64)
    for _ in range(lines):
        r0, c0, r1, c1 = rng.integers(0, side, size=4)
        rr, cc, val = line_aa(int(r0), int(c0), int(r1), int(c1))
        img[rr, cc] += val
    return ndimage.gaussian_filter(img, 1.0).astype(np.float32) * 1000.0


def make_release(
    root: Path, cells: int = 6, size: int = 192, seed: int = 0, photons: float = 200.0
) -> Path:
    """Write ``root/Microtubules/Cell_001..`` (levels 1..9, raw GT, SIM GT); return the folder."""
    rng = np.random.default_rng(seed)
    folder = root / "Microtubules"
    for cell in range(1, cells + 1):
        files = layout.release_files(folder, cell)
        files["sim_gt"].parent.mkdir(parents=True, exist_ok=True)
        gt = make_gt(size, rng)
        wf = ndimage.gaussian_filter(gt.astype(np.float64), 2 * WF_SIGMA)
        wf = wf.reshape(size, 2, size, 2).mean(axis=(1, 3))
        wf = wf / wf.max()
        for level in layout.LEVELS:
            scale = photons * level / 5
            frames = rng.poisson(wf * scale + 1.0, size=(layout.RAW_FRAMES, size, size))
            raw = (frames + layout.CAMERA_OFFSET).astype(np.uint16)
            write_mrc(files[f"level_{level:02d}"], raw, voxel_size_nm=layout.PIXEL_SIZE_WF_NM)
        write_mrc(files["raw_gt"], raw, voxel_size_nm=layout.PIXEL_SIZE_WF_NM)
        write_mrc(files["sim_gt"], gt, voxel_size_nm=layout.PIXEL_SIZE_GT_NM)
    return folder
