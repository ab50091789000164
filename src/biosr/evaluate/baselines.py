"""Reference predictions for every table: the widefield input, bicubic, Richardson-Lucy.

Each baseline reads the test split's widefield inputs and writes one float32
TIFF per input in the ``test_wf`` mirror layout (``OUT/level_XX/NNN.tif``),
on the GT's grid, ready for :func:`biosr.evaluate.evaluation.evaluate`:

``wf``
    The input itself; when the GT is finer (DL-SR geometry, GT 2x) each
    pixel is replicated onto the GT grid (no interpolation).
``bicubic``
    scikit-image's order-3 spline resize to the GT grid. On the published
    same-size release it equals ``wf``; it differs only when the GT is 2x.
``rl``
    Richardson-Lucy deconvolution (:func:`skimage.restoration.richardson_lucy`)
    of the bicubic image with the widefield Airy PSF of the GT grid
    (:func:`biosr.optics.widefield_psf`, emission 525 nm, NA 1.3).
    The input is shifted to a zero minimum (RL needs non-negative data) and
    reflect-padded by the PSF radius so the image edges do not ring. Option
    ``iterations`` (default :data:`RL_ITERATIONS`).

A ``baseline.json`` beside the level folders records the name and options.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from biosr import _parallel, layout
from biosr._checks import check_positive_int
from biosr.errors import BiosrError
from biosr.evaluate import prediction_folder
from biosr.evaluate.datasets import check_levels, dataset_of
from biosr.io.tiff import read_tiff, write_tiff

#: Baseline names, in table order (``sim`` reconstructs the raw release:
#: :mod:`biosr.evaluate.sim_baseline`).
BASELINES: tuple[str, ...] = ("wf", "bicubic", "rl", "sim")

#: Default Richardson-Lucy iterations.
RL_ITERATIONS = 20


def to_grid(image: np.ndarray, shape: tuple[int, int], *, order: int) -> np.ndarray:
    """Resize `image` to `shape`: ``order=0`` replicates pixels, ``order=3`` is bicubic."""
    image = np.asarray(image, dtype=np.float64)
    if image.shape == tuple(shape):
        return image
    from skimage.transform import resize

    return resize(image, shape, order=order, mode="reflect", anti_aliasing=False)


def richardson_lucy(image: np.ndarray, psf: np.ndarray, *, iterations: int) -> np.ndarray:
    """Richardson-Lucy deconvolution of a 2-D image, shifted non-negative and reflect-padded."""
    from skimage.restoration import richardson_lucy as rl

    image = np.asarray(image, dtype=np.float64)
    image = image - image.min()
    pad = psf.shape[0] // 2
    padded = np.pad(image, pad, mode="reflect")
    result = rl(padded, psf, num_iter=iterations, clip=False)
    return result[pad:-pad, pad:-pad] if pad else result


def predict_one(
    name: str,
    wf: np.ndarray,
    gt_shape: tuple[int, int],
    *,
    iterations: int = RL_ITERATIONS,
    pixel_size_nm: float | None = None,
) -> np.ndarray:
    """The `name` baseline's prediction of one widefield image, float32 on the GT grid.

    `pixel_size_nm` is the GT grid's (for the ``rl`` PSF); None takes
    Microtubules' (:func:`biosr.layout.gt_pixel_size_nm`).
    """
    if name == "wf":
        out = to_grid(wf, gt_shape, order=0)
    elif name == "bicubic":
        out = to_grid(wf, gt_shape, order=3)
    elif name == "rl":
        from biosr.optics import widefield_psf

        pixel = pixel_size_nm or layout.gt_pixel_size_nm(wf.shape, gt_shape)
        out = richardson_lucy(
            to_grid(wf, gt_shape, order=3), widefield_psf(pixel), iterations=iterations
        )
    else:
        raise BiosrError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    return out.astype(np.float32)


class BaselineJob(NamedTuple):
    """One widefield image a baseline predicts: a worker's job."""

    name: str
    wf_path: str
    out_path: str
    gt_shape: tuple[int, int]
    iterations: int
    pixel_size_nm: float


def _task(job: BaselineJob) -> str:
    wf = read_tiff(job.wf_path, dtype=None)
    pred = predict_one(
        job.name, wf, job.gt_shape, iterations=job.iterations, pixel_size_nm=job.pixel_size_nm
    )
    write_tiff(job.out_path, pred, pixel_size_nm=job.pixel_size_nm)
    return job.out_path


def run_baseline(
    name: str,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    levels: list[int] | None = None,
    iterations: int = RL_ITERATIONS,
    workers: int = _parallel.DEFAULT_WORKERS,
    overwrite: bool = False,
    force: bool = False,
    progress: bool = False,
    release: str | os.PathLike[str] | None = None,
    structure: str | layout.Structure | None = None,
) -> Path:
    """Write baseline `name`'s predictions of the test split in the ``test_wf`` mirror layout.

    Parameters
    ----------
    name : {'wf', 'bicubic', 'rl'}
        Which baseline.
    data : path-like
        Dataset root (folder containing ``BioSR/``, or a dataset folder such as
        ``Microtubules``).
    out : path-like
        Prediction folder to create; its name is the method's default name
        in :func:`biosr.evaluate.evaluation.evaluate`.
    levels : list of int, optional
        Levels to predict (default all of the structure's levels).
    iterations : int, optional
        Richardson-Lucy iterations (``rl`` only).
    workers : int, optional
        Processes (the output does not depend on it).
    overwrite : bool, optional
        Replace predictions ``biosr baseline`` already wrote in `out`.
    force : bool, optional
        Write into `out` even if ``biosr baseline`` did not make it
        (:func:`biosr.io.owner.check_replaceable`); a user's files are kept.
    progress : bool, optional
        Show a progress bar.
    release : path-like, optional
        ``sim`` only (required): the original release the dataset was built from.
    structure : str or Structure, optional
        Which structure under ``data/BioSR/`` (default: Microtubules, or the
        only one there); the dataset's structure gives the levels and the GT
        pixel size.

    Returns
    -------
    Path
        `out`, holding ``level_XX/NNN.tif`` and ``baseline.json``.
    """
    if name not in BASELINES:
        raise BiosrError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    if name == "sim":
        from biosr.evaluate.sim_baseline import run_sim_baseline

        if release is None:
            raise BiosrError("the sim baseline reconstructs the raw release: pass --release")
        return run_sim_baseline(
            release,
            data,
            out,
            levels=levels,
            workers=workers,
            overwrite=overwrite,
            force=force,
            progress=progress,
            structure=structure,
        )
    iterations = check_positive_int(iterations, "iterations")
    workers = check_positive_int(workers, "workers")
    base, chosen = dataset_of(data, structure)
    lev = check_levels(levels, base, chosen)
    pairs = layout.pairs(base, "test", lev, structure=chosen)
    if not pairs:
        raise BiosrError(f"{base}: no test inputs (expected test_wf/level_XX/NNN.tif)")
    out = Path(out)
    prediction_folder.check_folder(out, overwrite=overwrite, force=force)
    gt_shape = next((read_tiff(p.gt, dtype=None).shape for p in pairs if p.gt.is_file()), None)
    if gt_shape is None:
        raise BiosrError(f"{base}: no test GT found (expected test_gt/NNN.tif)")
    wf_shape = read_tiff(pairs[0].wf, dtype=None).shape
    pixel = layout.gt_pixel_size_nm(wf_shape, gt_shape, structure=chosen)
    prediction_folder.claim_folder(out)
    tasks = []
    for p in pairs:
        target = out / layout.level_dir(p.level, structure=chosen) / p.wf.name
        target.parent.mkdir(parents=True, exist_ok=True)
        tasks.append(
            BaselineJob(
                name=name,
                wf_path=str(p.wf),
                out_path=str(target),
                gt_shape=gt_shape,
                iterations=iterations,
                pixel_size_nm=pixel,
            )
        )
    _parallel.run(_task, tasks, workers=workers, progress=progress, desc=name, unit="img")
    info: dict = {
        "dataset": str(base),
        "structure": chosen.name,
        "images": len(tasks),
        "gt_shape": list(gt_shape),
        "pixel_size_nm": pixel,
    }
    if name == "rl":
        info.update(
            iterations=iterations,
            psf=f"widefield Airy, emission {layout.EMISSION_NM:g} nm, NA {layout.NA:g}",
        )
    prediction_folder.write_info(out, name, **info)
    return out
