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

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from biosr import __version__, layout
from biosr._checks import check_positive_int
from biosr._progress import bar
from biosr.errors import BiosrError
from biosr.io import owner
from biosr.io.atomic import write_text
from biosr.io.tiff import read_tiff, write_tiff

#: Baseline names, in table order.
BASELINES: tuple[str, ...] = ("wf", "bicubic", "rl")

#: Default Richardson-Lucy iterations.
RL_ITERATIONS = 20

#: File recording what a baseline folder holds.
INFO_FILE = "baseline.json"
#: The producer name of baseline folders (:mod:`biosr.io.owner`).
PRODUCER = "baseline"


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
    name: str, wf: np.ndarray, gt_shape: tuple[int, int], *, iterations: int = RL_ITERATIONS
) -> np.ndarray:
    """The `name` baseline's prediction of one widefield image, float32 on the GT grid."""
    if name == "wf":
        out = to_grid(wf, gt_shape, order=0)
    elif name == "bicubic":
        out = to_grid(wf, gt_shape, order=3)
    elif name == "rl":
        from biosr.optics import widefield_psf

        pixel = layout.gt_pixel_size_nm(wf.shape, gt_shape)
        out = richardson_lucy(
            to_grid(wf, gt_shape, order=3), widefield_psf(pixel), iterations=iterations
        )
    else:
        raise BiosrError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    return out.astype(np.float32)


def _task(task: tuple) -> str:
    name, wf_path, out_path, gt_shape, iterations, pixel = task
    wf = read_tiff(wf_path, dtype=None)
    write_tiff(
        out_path, predict_one(name, wf, gt_shape, iterations=iterations), pixel_size_nm=pixel
    )
    return out_path


def run_baseline(
    name: str,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    levels: list[int] | None = None,
    iterations: int = RL_ITERATIONS,
    workers: int = 1,
    overwrite: bool = False,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Write baseline `name`'s predictions of the test split in the ``test_wf`` mirror layout.

    Parameters
    ----------
    name : {'wf', 'bicubic', 'rl'}
        Which baseline.
    data : path-like
        Dataset root (folder containing ``BioSR/``, or ``Microtubules``).
    out : path-like
        Prediction folder to create; its name is the method's default name
        in :func:`biosr.evaluate.evaluation.evaluate`.
    levels : list of int, optional
        Levels to predict (default all nine).
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

    Returns
    -------
    Path
        `out`, holding ``level_XX/NNN.tif`` and ``baseline.json``.
    """
    if name not in BASELINES:
        raise BiosrError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    iterations = check_positive_int(iterations, "iterations")
    workers = check_positive_int(workers, "workers")
    try:
        lev = None if levels is None else [layout.check_level(v) for v in levels]
    except ValueError as exc:
        raise BiosrError(str(exc)) from None
    base = layout.dataset_dir(data)
    pairs = layout.pairs(base, "test", lev)
    if not pairs:
        raise BiosrError(f"{base}: no test inputs (expected test_wf/level_XX/NNN.tif)")
    out = Path(out)
    if (
        out.is_dir()
        and not (overwrite or force)
        and any(layout.parse_level_dir(p.name) for p in out.iterdir() if p.is_dir())
    ):
        raise BiosrError(f"{out}: already holds predictions; pass --overwrite to replace them")
    owner.check_replaceable(out, PRODUCER, force=force)
    gt_shape = next((read_tiff(p.gt, dtype=None).shape for p in pairs if p.gt.is_file()), None)
    if gt_shape is None:
        raise BiosrError(f"{base}: no test GT found (expected test_gt/NNN.tif)")
    wf_shape = read_tiff(pairs[0].wf, dtype=None).shape
    pixel = layout.gt_pixel_size_nm(wf_shape, gt_shape)
    owner.claim(out, PRODUCER, cards=[INFO_FILE])
    tasks = []
    for p in pairs:
        target = out / layout.level_dir(p.level) / p.wf.name
        target.parent.mkdir(parents=True, exist_ok=True)
        tasks.append((name, str(p.wf), str(target), gt_shape, iterations, pixel))
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunk = max(1, len(tasks) // (workers * 8))
            it = pool.map(_task, tasks, chunksize=chunk)
            for _ in bar(it, enabled=progress, total=len(tasks), desc=name, unit="img"):
                pass
    else:
        for task in bar(tasks, enabled=progress, total=len(tasks), desc=name, unit="img"):
            _task(task)
    info = {
        "baseline": name,
        "biosr_version": __version__,
        "dataset": str(base),
        "images": len(tasks),
        "gt_shape": list(gt_shape),
        "pixel_size_nm": pixel,
    }
    if name == "rl":
        info.update(
            iterations=iterations,
            psf=f"widefield Airy, emission {layout.EMISSION_NM:g} nm, NA {layout.NA:g}",
        )
    write_text(out / INFO_FILE, json.dumps(info, indent=2) + "\n")
    return out
