"""A PNG montage of a simulated cell: WF at levels 1, 5 and 9 beside the GT, to judge by eye.

For a structure of other levels: its first, middle and last (ER: 1, 3, 6).

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


def preview_levels(structure: str | layout.Structure | None = None) -> tuple[int, ...]:
    """First, middle and last level of a structure (:func:`biosr.layout.sample_levels`).

    Examples
    --------
    >>> preview_levels(), preview_levels("ER"), preview_levels("F-actin")
    ((1, 5, 9), (1, 3, 6), (1, 6, 12))
    """
    return layout.sample_levels(layout.get_structure(structure).levels)


def _panels(
    folder: Path, index: int, structure: layout.Structure
) -> tuple[list[np.ndarray], np.ndarray, str]:
    cell_dir = layout.release_cell_dir(folder, index)
    levels = preview_levels(structure)
    if cell_dir.is_dir():
        files = layout.release_files(folder, index, structure=structure)
        wfs = [read_mrc(files[f"level_{lv:02d}"]).data.mean(axis=0) for lv in levels]
        gt_key = "sim_gt" if "sim_gt" in files else f"sim_gt_{levels[-1]:02d}"
        return wfs, read_mrc(files[gt_key]).data[0], cell_dir.name
    dataset = layout.dataset_dir(folder, structure=structure)
    wfs = [
        read_tiff(layout.pair(dataset, "test", index, lv, structure=structure).wf, shape=None)
        for lv in levels
    ]
    pair = layout.pair(dataset, "test", index, levels[-1], structure=structure)  # as a release's
    return wfs, read_tiff(pair.gt, shape=None), f"test pair {index:03d}"


def write_preview(
    folder: str | os.PathLike[str],
    png: str | os.PathLike[str],
    *,
    index: int = 1,
    structure: str | layout.Structure | None = None,
) -> Path:
    """Write a montage: WF at the first, middle and last level | GT, of one cell or test pair.

    Parameters
    ----------
    folder : path-like
        A simulated release (the ``<Structure>`` folder holding ``Cell_XXX``)
        or a dataset in the published layout (its root or ``<Structure>`` folder).
    png : path-like
        Output PNG file (written atomically).
    index : int, optional
        Cell number (release) or test pair index (patches); default 1.
    structure : str or Structure, optional
        Default: the one :func:`biosr.layout.structure_of` finds for `folder`
        (its card or name; Microtubules).

    Returns
    -------
    Path
        The PNG file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    if structure is not None:
        s = layout.get_structure(structure)
    elif layout.release_cell_dir(folder, index).is_dir():
        s = layout.structure_of(folder)
    else:
        s = layout.structure_of(layout.dataset_dir(folder))
    wfs, gt, title = _panels(folder, index, s)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), constrained_layout=True)
    for ax, image, lv in zip(axes[:3], wfs, preview_levels(s), strict=True):
        lo, hi = np.percentile(image, [0.5, 99.8])
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(f"WF level {lv:02d} (~{s.photons[lv]:.0f} photons)")
    lo, hi = np.percentile(gt, [0.5, 99.8])
    axes[3].imshow(gt, cmap="gray", vmin=lo, vmax=hi)
    axes[3].set_title(
        f"GT (SIM resolution, {s.gt_scale}x)" if s.gt_scale != 2 else "GT (SIM resolution)"
    )
    for ax in axes:
        ax.set_axis_off()
    prefix = "" if s.published else f"{s.name} "
    fig.suptitle(f"biosr simulate: {prefix}{title}")
    png = Path(png)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return png
