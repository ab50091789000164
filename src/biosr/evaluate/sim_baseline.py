"""The ``sim`` baseline: conventional SIM of each test cell and level, cut as the GT was cut.

For each test cell of a built dataset, every level's raw stack in the original
release is reconstructed (:func:`biosr.reconstruct.wiener.reconstruct_sim`,
the authors' settings) and the test crops the dataset's ``manifest.csv``
records (cell, crop origin) are cut from it exactly as
:mod:`biosr.build.builder` cuts ``SIM_gt``: the same GT-grid slice, 2x2 binned
when the dataset's GT is on the WF grid, normalised with the build's method.
The stacks are read as the builder reads them (:func:`biosr.build.source.read_level`),
so the SIM image lies on the GT's grid. A level too dim to estimate its
illumination from takes the parameters of the cell's brightest level (the same
patterns light every level of a cell). Predictions are written as
``OUT/level_XX/NNN.tif`` for :func:`biosr.evaluate.evaluation.evaluate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from biosr import _parallel, layout
from biosr.build import protocol
from biosr.build.builder import build
from biosr.build.source import open_source, read_level
from biosr.dataset.manifest import read_card, read_manifest
from biosr.errors import BiosrError, DataError
from biosr.evaluate import prediction_folder
from biosr.evaluate.datasets import check_levels, dataset_of
from biosr.io.tiff import write_tiff
from biosr.reconstruct.parameters import SimParameters, estimate_parameters
from biosr.reconstruct.wiener import reconstruct_sim


class CellJob(NamedTuple):
    """One test cell: its raw level files and the crops to cut at every level."""

    cell: int
    files: dict[int, str]
    crops: tuple[tuple[int, int, int], ...]  # (index, crop_y, crop_x)
    out: str
    patch: int
    gt_scale: int
    normalize: str
    percentiles: tuple[float, float]
    pixel_size_nm: float
    structure: str = layout.DEFAULT_STRUCTURE


def crops_of_test_cells(dataset: Path) -> dict[int, list[tuple[int, int, int]]]:
    """``{cell: [(index, crop_y, crop_x), ...]}`` of the test targets in `dataset`'s manifest.

    One entry per test image, also where the structure has one GT per level
    (ER's manifest lists each crop once per level, at the same origin).

    Raises
    ------
    DataError
        If the dataset has no manifest or its test rows carry no crop provenance.
    """
    rows = read_manifest(dataset)
    if rows is None:
        raise DataError(
            f"{dataset}: no {layout.MANIFEST_FILE}; the sim baseline needs a dataset built "
            "by `biosr build` (it records each test crop's cell and origin)"
        )
    crops: dict[int, set[tuple[int, int, int]]] = {}
    for row in rows.values():
        if row["split"] != "test" or row["role"] != "gt":
            continue
        try:
            cell, y, x = int(row["cell"]), int(row["crop_y"]), int(row["crop_x"])
        except (KeyError, ValueError):
            raise DataError(
                f"{dataset / layout.MANIFEST_FILE}: test rows lack cell/crop_y/crop_x; "
                "rebuild the dataset with `biosr build`"
            ) from None
        crops.setdefault(cell, set()).add((int(row["index"]), y, x))
    if not crops:
        raise DataError(f"{dataset / layout.MANIFEST_FILE}: no test targets listed")
    return {cell: sorted(c) for cell, c in sorted(crops.items())}


def _cell_task(job: CellJob) -> int:
    chosen = layout.get_structure(job.structure)
    raw_nm = chosen.pixel_size_wf_nm
    stacks = {level: read_level(Path(path)) for level, path in job.files.items()}
    brightest: SimParameters | None = None
    for level in sorted(stacks, reverse=True):
        try:
            brightest = estimate_parameters(stacks[level], pixel_size_nm=raw_nm)
            break
        except DataError:
            continue
    if brightest is None:
        raise DataError(
            f"{job.files[max(job.files)]}: no level of cell {job.cell} shows a SIM pattern to "
            "estimate the illumination from"
        )
    written = 0
    for level, stack in stacks.items():
        try:
            params = estimate_parameters(stack, pixel_size_nm=raw_nm)
        except DataError:
            params = brightest
        sim, _ = reconstruct_sim(
            stack, params, pixel_size_nm=raw_nm, notch_attenuation=chosen.notch
        )
        folder = Path(job.out) / layout.level_dir(level, structure=chosen)
        for index, y, x in job.crops:
            crop = sim[2 * y : 2 * (y + job.patch), 2 * x : 2 * (x + job.patch)]
            if job.gt_scale == 1:
                crop = protocol.bin2(crop)
            crop = protocol.normalize(crop, job.normalize, percentiles=job.percentiles)
            name = f"{index:0{layout.NAME_DIGITS['test']}d}{layout.SUFFIX}"
            write_tiff(folder / name, crop, pixel_size_nm=job.pixel_size_nm)
            written += 1
    return written


def run_sim_baseline(
    release: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    levels: list[int] | None = None,
    workers: int | None = _parallel.DEFAULT_WORKERS,
    overwrite: bool = False,
    force: bool = False,
    progress: bool = False,
    structure: str | layout.Structure | None = None,
) -> Path:
    """Write conventional SIM predictions of a built dataset's test split.

    Parameters
    ----------
    release : path-like
        The extracted original release the dataset was built from (holds ``Cell_XXX/``).
    data : path-like
        Dataset root (folder containing ``BioSR/``, or a dataset folder), built by
        ``biosr build`` (its manifest and card give the crops and conventions).
    out : path-like
        Prediction folder to create (``level_XX/NNN.tif`` and ``baseline.json``).
    levels : list of int, optional
        Levels to predict (default all of the structure's levels).
    workers : int or None, optional
        Processes, one cell each (the output does not depend on it).
    overwrite : bool, optional
        Replace predictions ``biosr baseline`` already wrote in `out`.
    force : bool, optional
        Write into a folder another command made (:mod:`biosr.io.owner`).
    progress : bool, optional
        Show a bar over the cells.
    structure : str or Structure, optional
        Which structure under ``data/BioSR/`` (default: Microtubules, or the
        only one there); the dataset's structure gives the levels, the
        release's file names, the raw pixel size and the notch. Linear SIM
        only: a nonlinear-SIM structure (25 frames) is refused.

    Returns
    -------
    Path
        `out`.
    """
    base, chosen = dataset_of(data, structure)
    if chosen.frames != layout.RAW_FRAMES:
        raise DataError(
            f"{base}: the sim baseline is linear SIM of {layout.RAW_FRAMES}-frame stacks; "
            f"{chosen.name} has {chosen.frames}-frame {chosen.modality} stacks, which biosr "
            "does not reconstruct; use the wf or rl baseline"
        )
    card = read_card(base) or {}
    prot = card.get("protocol", {})
    if "gt_scale" not in card or "normalize" not in prot:
        raise DataError(
            f"{base}: its dataset card does not record the build's GT grid and normalisation; "
            "the sim baseline needs a dataset built by `biosr build`"
        )
    crops = crops_of_test_cells(base)
    lev = list(chosen.levels) if levels is None else check_levels(levels, base, chosen)
    src = open_source(release, tuple(crops), structure=chosen)
    if src.zip_prefix is not None:
        raise DataError(
            f"{src.path}: the sim baseline reads the raw stacks from an extracted release; "
            "unzip it and pass the folder"
        )
    release = src.path
    jobs = []
    out = Path(out)
    for cell, cell_crops in crops.items():
        files = layout.release_files(release, cell, structure=chosen)
        paths = {lv: files[f"level_{lv:02d}"] for lv in lev}
        jobs.append(
            CellJob(
                cell=cell,
                files={lv: str(p) for lv, p in paths.items()},
                crops=tuple(cell_crops),
                out=str(out),
                patch=int(card["patch_size"]),
                gt_scale=int(card["gt_scale"]),
                normalize=str(prot["normalize"]),
                percentiles=tuple(prot.get("percentiles", (0.0, 100.0))),
                pixel_size_nm=float(card["pixel_size_gt_nm"]),
                structure=chosen.name,
            )
        )
    prediction_folder.check_folder(out, overwrite=overwrite, force=force)
    prediction_folder.claim_folder(out)
    for lv in lev:
        (out / layout.level_dir(lv, structure=chosen)).mkdir(parents=True, exist_ok=True)
    images = _parallel.run(
        _cell_task, jobs, workers=workers, progress=progress, desc="sim", unit="cell"
    )
    info: dict[str, Any] = {
        "dataset": str(base),
        "structure": chosen.name,
        "release": str(release),
        "images": int(sum(images)),
        "method": "2-D linear SIM, generalised Wiener filter, the authors' settings "
        "(biosr.reconstruct)",
    }
    prediction_folder.write_info(out, "sim", **info)
    if not images:
        raise BiosrError(f"{base}: no test cells to reconstruct")
    return out


def build_with_sim_baseline(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    sim_out: str | os.PathLike[str],
    *,
    workers: int = _parallel.DEFAULT_WORKERS,
    progress: bool = False,
    force: bool = False,
    **build_args: Any,
) -> tuple[Path, Path]:
    """:func:`biosr.build.builder.build`, then :func:`run_sim_baseline` of what it built.

    `build_args` go to ``build`` (``preset``, ``seed``, ``overwrite``, options);
    `force` to both (taking over folders another command made). Returns the dataset
    folder and the prediction folder.
    """
    dataset = build(source, out, workers=workers, progress=progress, force=force, **build_args)
    overwrite = bool(build_args.get("overwrite", False))
    sim = run_sim_baseline(
        source,
        out,
        sim_out,
        workers=workers,
        overwrite=overwrite,
        force=force,
        progress=progress,
        structure=build_args.get("structure"),
    )
    return dataset, sim
