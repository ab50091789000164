"""Reconstruct raw SIM stacks from files: one MRC/TIFF or a release's cell folders, to TIFF + JSON.

A single stack ``NAME.mrc`` (or ``.tif``) gives ``OUT/NAME.tif`` and
``OUT/NAME.json``; a release folder gives ``OUT/Cell_XXX/RawSIMData_level_YY.tif``
(and ``.json``) for every ``Cell_XXX/RawSIMData_level_YY.mrc`` under it. The TIFF
is float32 on the 2x grid with its pixel size (31.3 nm for BioSR); the JSON
holds the :class:`~biosr.reconstruct.parameters.SimParameters` used. Writes are
atomic, the output folder is claimed (:mod:`biosr.io.owner`), and the result
does not depend on the number of workers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biosr import layout
from biosr._parallel import DEFAULT_WORKERS, run
from biosr.errors import DataError
from biosr.io import owner
from biosr.io.mrc import read_mrc
from biosr.io.tiff import write_tiff
from biosr.reconstruct.parameters import SimParameters, read_params, write_params
from biosr.reconstruct.wiener import reconstruct_sim

#: The producer name of reconstruction folders (:mod:`biosr.io.owner`).
PRODUCER = "reconstruct"
#: Suffixes of the stacks read.
STACK_SUFFIXES = (".mrc", ".tif", ".tiff")
#: Suffix of the parameter file written beside each image.
PARAMS_SUFFIX = ".json"
#: A raw level file of any structure's release, relative to its ``Cell_XXX`` folder
#: (``RawSIMData_level_YY.mrc``; ER's ``RawSIMData/RawSIMData_level_YY.mrc``).
_LEVEL_FILE = re.compile(
    "^(?:"
    + "|".join(
        sorted(
            {
                re.escape(s.level_file).replace(re.escape("{level:02d}"), r"\d{2}")
                for s in layout.STRUCTURES.values()
            }
        )
    )
    + ")$"
)


class Job(NamedTuple):
    """One stack to reconstruct: its file, the image to write, and how."""

    source: Path
    target: Path
    params: SimParameters | None
    settings: dict[str, Any]


def read_stack(path: str | os.PathLike[str]) -> tuple[np.ndarray, float | None]:
    """A raw SIM stack and its pixel size in nm (None when the file does not say).

    Raises
    ------
    DataError
        If the file is missing, unreadable, or not a stack of frames.
    """
    path = Path(path)
    if path.suffix.lower() == ".mrc":
        stack = read_mrc(path)
        return np.asarray(stack.data), stack.voxel_size_nm or None
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            return np.asarray(tifffile.imread(path)), None
        except FileNotFoundError:
            raise DataError(f"{path}: file not found") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable TIFF ({exc})") from None
    raise DataError(
        f"{path}: not a raw SIM stack file; expected one of {', '.join(STACK_SUFFIXES)}"
    )


def find_stacks(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> list[tuple]:
    """``(stack, image to write)`` pairs for a file or a release folder, sorted.

    Raises
    ------
    DataError
        If `source` is missing, or a folder with no ``Cell_XXX/RawSIMData_level_YY.mrc``
        (or ER's ``Cell_XXX/RawSIMData/...``).
    """
    source, out = Path(source), Path(out)
    if source.is_file():
        return [(source, out / f"{source.stem}.tif")]
    if not source.is_dir():
        raise DataError(f"{source}: not found; pass a raw stack file or a release folder")
    pairs = []
    for cell in sorted(source.iterdir()):
        if not cell.is_dir() or layout.parse_cell_dir(cell.name) is None:
            continue
        for f in sorted(p for p in cell.rglob("*") if p.is_file()):
            rel = f.relative_to(cell)
            if _LEVEL_FILE.match(rel.as_posix()):
                pairs.append((f, out / cell.name / rel.with_suffix(".tif")))
    if not pairs:
        raise DataError(
            f"{source}: no Cell_XXX/{layout.RAW_LEVEL_FILE.format(level=1)}-like stacks; pass a "
            "raw stack file or an extracted release folder"
        )
    return pairs


def reconstruct_file(job: Job) -> SimParameters:
    """Reconstruct one stack and write its TIFF and JSON (both atomically)."""
    stack, file_pixel = read_stack(job.source)
    settings = dict(job.settings)
    if settings.get("pixel_size_nm") is None:
        settings["pixel_size_nm"] = file_pixel or layout.PIXEL_SIZE_WF_NM
    try:
        image, params = reconstruct_sim(stack, job.params, **settings)
    except DataError as exc:
        raise DataError(f"{job.source}: {exc}") from None
    job.target.parent.mkdir(parents=True, exist_ok=True)
    write_tiff(job.target, image, pixel_size_nm=settings["pixel_size_nm"] / 2.0)
    write_params(job.target.with_suffix(PARAMS_SUFFIX), params)
    return params


def reconstruct_files(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    params_file: str | os.PathLike[str] | None = None,
    pixel_size_nm: float | None = None,
    workers: int | None = DEFAULT_WORKERS,
    force: bool = False,
    progress: bool = False,
    **settings: Any,
) -> list[Path]:
    """Reconstruct a raw stack file, or every raw level stack of a release folder.

    Parameters
    ----------
    source : path-like
        A ``.mrc`` (BioSR's dialect) or ``.tif`` stack of 9 frames, or a folder
        of ``Cell_XXX/RawSIMData_level_YY.mrc``.
    out : path-like
        Output folder (created; mirrors the cell folders).
    params_file : path-like, optional
        Fixed parameters (a JSON written by this function) for every stack,
        instead of estimating them: for stacks too dim to estimate from.
    pixel_size_nm : float, optional
        Raw pixel size; default: the MRC header's, else 62.6 nm.
    workers : int or None, optional
        Processes (default 1; None: every core). The output does not depend on it.
    force : bool, optional
        Write into a folder another command made (:mod:`biosr.io.owner`).
    progress : bool, optional
        Show a bar over the files.
    **settings
        Passed to :func:`~biosr.reconstruct.wiener.reconstruct_sim` (``otf_kind``,
        ``wiener``, ``apodization``, ``notch_attenuation``, ``notch_radius``,
        ``modulation``).

    Returns
    -------
    list of Path
        The TIFFs written, in file order.

    Raises
    ------
    DataError
        For a bad input (one line naming the file and the reason); the files
        reconstructed before it are kept, none is half-written.
    """
    out = Path(out)
    params = read_params(params_file) if params_file is not None else None
    pairs = find_stacks(source, out)
    sources = {p.resolve() for p, _ in pairs}
    for _, target in pairs:
        if target.resolve() in sources or target.with_suffix(PARAMS_SUFFIX).resolve() in sources:
            raise DataError(f"{target}: would overwrite an input stack; choose another --out")
    owner.check_replaceable(out, PRODUCER, force=force)
    created = not out.exists()
    marker = owner.claim(out, PRODUCER)
    settings = {"pixel_size_nm": pixel_size_nm, **settings}
    jobs = [Job(src, target, params, settings) for src, target in pairs]
    try:
        bar = progress and len(jobs) > 1  # a bar over one file says nothing
        run(reconstruct_file, jobs, workers=workers, progress=bar, desc="reconstruct")
    except BaseException:
        if created and [p.name for p in out.iterdir()] == [marker.name]:
            marker.unlink()  # nothing was written: leave no empty folder behind
            out.rmdir()
        raise
    return [job.target for job in jobs]
