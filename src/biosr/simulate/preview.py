"""A PNG montage of a simulated cell: WF at levels 1, 5 and 9 beside the GT, to judge by eye.

matplotlib is imported here only, when a preview is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from biosr import layout
from biosr.io.atomic import atomic_path
from biosr.io.mrc import read_mrc
from biosr.io.tiff import read_tiff

#: Levels shown in the montage.
PREVIEW_LEVELS: tuple[int, ...] = (1, 5, 9)


def _panels(folder: Path, index: int) -> tuple[list[np.ndarray], np.ndarray, str]:
    cell_dir = layout.release_cell_dir(folder, index)
    if cell_dir.is_dir():
        files = layout.release_files(folder, index)
        wfs = [read_mrc(files[f"level_{lv:02d}"]).data.mean(axis=0) for lv in PREVIEW_LEVELS]
        return wfs, read_mrc(files["sim_gt"]).data[0], cell_dir.name
    dataset = layout.dataset_dir(folder)
    wfs = [
        read_tiff(layout.pair(dataset, "test", index, lv).wf, shape=None) for lv in PREVIEW_LEVELS
    ]
    gt = read_tiff(layout.pair(dataset, "test", index, 1).gt, shape=None)
    return wfs, gt, f"test pair {index:03d}"


def write_preview(
    folder: str | os.PathLike[str], png: str | os.PathLike[str], *, index: int = 1
) -> Path:
    """Write a montage: WF at levels 1, 5, 9 | GT, of one cell or test pair.

    Parameters
    ----------
    folder : path-like
        A simulated release (the ``Microtubules`` folder holding ``Cell_XXX``)
        or a dataset in the published layout (its root or ``Microtubules`` folder).
    png : path-like
        Output PNG file (written atomically).
    index : int, optional
        Cell number (release) or test pair index (patches); default 1.

    Returns
    -------
    Path
        The PNG file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wfs, gt, title = _panels(Path(folder), index)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), constrained_layout=True)
    for ax, image, lv in zip(axes[:3], wfs, PREVIEW_LEVELS, strict=True):
        lo, hi = np.percentile(image, [0.5, 99.8])
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(f"WF level {lv:02d} (~{layout.PHOTONS[lv]:.0f} photons)")
    lo, hi = np.percentile(gt, [0.5, 99.8])
    axes[3].imshow(gt, cmap="gray", vmin=lo, vmax=hi)
    axes[3].set_title("GT (SIM resolution)")
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"biosr simulate: {title}")
    png = Path(png)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return png
