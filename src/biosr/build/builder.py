"""Build the published dataset from the original BioSR release: plan, workers, resume, provenance.

:func:`build` checks the whole source first (nothing is written if any file
is missing, its MRC header disagrees with its size, mode or shape, or a zip
member fails its CRC; the image values themselves are read only while
cutting), then cuts each cell in a worker process (:func:`biosr._parallel.run`,
one cell in memory per worker). Every random choice of a cell comes from its own
``SeedSequence(seed, spawn_key=(cell,))`` and every file index from the plan,
so the output is bit-identical for any number of workers. A worker writes
its TIFFs atomically, then its manifest rows to ``.biosr_build/`` (the
cell's done-marker); a re-run after an interruption skips the cells that
have one. The final manifest and dataset card are written last, and the
work folder removed. The protocol's array functions live in
:mod:`biosr.build.protocol`, reading the release in :mod:`biosr.build.source`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biosr import _parallel, layout
from biosr._checks import check_seed, check_workers
from biosr.build import produce, protocol
from biosr.build.options import DEFAULT_PRESET, BuildOptions, resolve_options
from biosr.build.source import (
    Source,
    cell_files,
    file_label,
    gt_key,
    level_key,
    open_source,
    read_gt,
    read_level,
)
from biosr.dataset.manifest import card_base, file_row, read_card, write_card, write_manifest
from biosr.errors import DataError
from biosr.io import owner
from biosr.io.atomic import is_part, write_text
from biosr.io.tiff import write_tiff

_PLAN_FILE = "plan.json"
#: The producer name of built datasets (:mod:`biosr.io.owner`).
PRODUCER = "build"
_SPLIT_ORDER = ("validate", "training", "test")


class Task(NamedTuple):
    """One cell's work: everything a worker needs, picklable."""

    source: Source
    dataset: Path
    split: str
    cell: int
    first: int
    options: BuildOptions
    seed: int


def build(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    preset: str = DEFAULT_PRESET,
    seed: int = 0,
    workers: int = _parallel.DEFAULT_WORKERS,
    progress: bool = False,
    overwrite: bool = False,
    force: bool = False,
    **overrides: Any,
) -> Path:
    """Cut the original release into the published layout, with manifest and card.

    Parameters
    ----------
    source : path-like
        Extracted release (folder of ``Cell_XXX``, or its parent holding
        ``<Structure>/``) or ``<Structure>.zip`` (``Microtubules.zip`` ...).
        Never modified.
    out : path-like
        Root to write ``BioSR/<Structure>`` under (or that folder itself).
    preset : str
        A name of :data:`biosr.build.options.PRESETS`: ``"published"`` (the
        authors' protocol) or ``"small"`` (6 cells).
    seed : int
        Seed of every random choice; same source and seed give bit-identical
        files whatever `workers` is.
    workers : int or None
        Processes, one cell each at a time (default
        :data:`biosr._parallel.DEFAULT_WORKERS`; None: every core).
    progress : bool
        Show a progress bar of cells (and pairs) on stderr.
    overwrite : bool
        Replace a different dataset ``biosr build`` made at `out` (its split
        folders, manifest, card and work folder only).
    force : bool
        With `overwrite`, also replace a dataset another command made (a
        simulation, a download) or a folder without a marker
        (:mod:`biosr.io.owner`); a user's own files are kept either way.
    **overrides
        Protocol options (:class:`~biosr.build.options.BuildOptions`, by
        their flat names; None leaves the preset's value): ``training_cells``, ``validate_cells``,
        ``test_cells`` (tuples or text like ``"6-35"``), ``training_crops``,
        ``validate_crops``, ``test_crops``, ``flips``, ``rotate``,
        ``patch_size``, ``gt_scale`` (1: GT binned onto the WF grid, 2x2 or
        3x3; the structure's native 2 or 3: DL-SR's 128/256 or 128/384
        pairs), ``normalize`` (minmax, percentile, stored), ``percentiles``,
        ``mask_threshold``, ``mask_min_pixels``, ``mask_factor``,
        ``mask_background_sigma``, ``structure`` (a name of
        :data:`biosr.layout.STRUCTURES`, default Microtubules: its levels,
        frames, GT scale, file names and DL-SR crop counts).

    Returns
    -------
    Path
        The built ``BioSR/<Structure>`` folder. Its card records the
        structure and, under ``"checked"``, what the release's headers and
        folders say of the table's facts
        (:func:`biosr.build.source.describe_checks` words them).

    Raises
    ------
    DataError
        A bad source (one line naming the file; nothing written when a file
        is missing, its header is wrong or a zip member is corrupt) or an
        output folder holding a different dataset.
    """
    seed, workers = check_seed(seed), check_workers(workers)  # before anything is written
    options = resolve_options(preset, **overrides)
    structure = layout.get_structure(options.structure)
    src = open_source(source, options.all_cells(), structure=structure)
    _check_geometry(src, options)
    dataset = layout.dataset_dir(out, structure=structure, must_exist=False)
    fingerprint = _fingerprint(options, seed, src)
    work = dataset / layout.BUILD_DIR
    if _prepare_output(dataset, fingerprint, overwrite=overwrite, force=force) == "done":
        return dataset
    work.mkdir(parents=True, exist_ok=True)
    write_text(work / _PLAN_FILE, json.dumps({"fingerprint": fingerprint}) + "\n")
    owner.claim(dataset, PRODUCER)
    produce.make_split_dirs(dataset, structure=structure)

    tasks = _plan(src, dataset, options, seed)
    rows: list[dict[str, Any]] = []
    todo = []
    for task in tasks:
        done = _read_part(_part_file(work, task))
        if done is None:
            todo.append(task)
        else:
            rows.extend(done)
    total = options.counts()
    desc = (
        f"build {total['training']}+{total['validate']}+{total['test']}x{len(structure.levels)} "
        "pairs, cells"
    )
    done = _parallel.run(
        build_cell, todo, workers=workers, chunksize=1, progress=progress, desc=desc, unit="cell"
    )
    for cell_rows in done:
        rows.extend(cell_rows)

    write_manifest(dataset, rows)
    write_card(dataset, _card(src, options, seed, fingerprint, total))
    _sweep_parts(dataset)
    shutil.rmtree(work, ignore_errors=True)
    return dataset


def _check_geometry(src: Source, options: BuildOptions) -> None:
    patch = options.patch_size
    for cell, entry in src.cells.items():
        name, (_, _, ny, nx) = entry["level_01"]
        train = cell not in options.cells["test"]
        need = 2 * protocol.region_half(patch, options.rotate and train)
        if min(ny, nx) < need:
            raise DataError(
                f"{src.path}/{name}: frames {ny}x{nx} are smaller than the {need} px "
                f"region a {patch} px patch needs"
            )


def _fingerprint(options: BuildOptions, seed: int, src: Source) -> str:
    params = options.flat()
    if params["structure"] == layout.DEFAULT_STRUCTURE:
        del params["structure"]  # the fingerprint of every Microtubules build made before it
    blob = json.dumps({"params": params, "seed": seed, "source": src.fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _prepare_output(dataset: Path, fingerprint: str, *, overwrite: bool, force: bool) -> str:
    """``"fresh"``, ``"resume"`` or ``"done"``; raise if `dataset` holds something else.

    With `overwrite`, what ``biosr build`` made is cleared; another producer's
    dataset only with `force` (:func:`biosr.build.produce.prepare_dataset`).
    """
    if not dataset.exists():
        return "fresh"
    if not dataset.is_dir():
        raise DataError(f"{dataset}: exists and is not a folder")
    plan = dataset / layout.BUILD_DIR / _PLAN_FILE
    card = read_card(dataset)
    if plan.is_file():
        try:
            found = json.loads(plan.read_text(encoding="utf-8")).get("fingerprint")
        except (json.JSONDecodeError, AttributeError):
            raise DataError(
                f"{plan}: unreadable build plan (not a JSON object); remove "
                f"{layout.BUILD_DIR}/ or pass --overwrite"
            ) from None
        if found == fingerprint:
            return "resume"
        reason = "an unfinished build with other source, options or seed"
    elif card is not None:
        if card.get("build", {}).get("fingerprint") == fingerprint:
            return "done"
        reason = "a different dataset (its dataset card records another source, options or seed)"
    elif any(True for _ in dataset.iterdir()):
        reason = "files that are not from a biosr build"
    else:
        return "fresh"
    if not overwrite:
        raise DataError(
            f"{dataset}: already holds {reason}; choose another output or pass --overwrite"
        )
    produce.prepare_dataset(dataset, overwrite=True, producer=PRODUCER, force=force)
    return "fresh"


def _plan(src: Source, dataset: Path, options: BuildOptions, seed: int) -> list[Task]:
    """One task per cell; file indices follow the cell order of each split."""
    tasks = []
    for split in _SPLIT_ORDER:
        for pos, cell in enumerate(options.cells[split]):
            first = 1 + pos * options.pairs_per_cell(split)
            tasks.append(Task(src, dataset, split, cell, first, options, seed))
    return tasks


def _part_file(work: Path, task: Task) -> Path:
    return work / f"{task.split}_cell_{task.cell:03d}.csv"


def _read_part(path: Path) -> list[dict[str, Any]] | None:
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_part(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["path"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def build_cell(task: Task) -> list[dict[str, Any]]:
    """Cut, write and record one cell's patches; return its manifest rows.

    Each level's patches are cut against that level's SIM GT: the cell's one
    GT, or for a structure with one per level (ER) the level's own. The
    cell's done-marker (its rows, under ``.biosr_build/``) is written only
    after all its files are in place.
    """
    options, split, cell = task.options, task.split, task.cell
    structure = layout.get_structure(options.structure)
    work = task.dataset / layout.BUILD_DIR
    rng = np.random.default_rng(produce.cell_seed(task.seed, cell))
    patch = options.patch_size
    rows: list[dict[str, Any]] = []
    with cell_files(task.source, cell, work / "scratch") as files:
        names = {key: name for key, (name, _) in task.source.cells[cell].items()}
        labels = {key: file_label(task.source, name) for key, name in names.items()}
        keys = {level: gt_key(structure, level) for level in structure.levels}
        gts = {
            key: read_gt(files[key], label=labels[key]).astype(np.float32)
            for key in dict.fromkeys(keys.values())
        }
        masks = {key: _mask(gt, structure.gt_scale, options) for key, gt in gts.items()}
        if split == "test":
            # one set of crops for every level (DL-SR): from the mean GT when there are several
            if len(gts) == 1:
                mask = next(iter(masks.values()))
            else:
                mean_gt = np.mean(np.stack(list(gts.values())), axis=0, dtype=np.float64)
                mask = _mask(mean_gt.astype(np.float32), structure.gt_scale, options)
            centres = protocol.valid_centres(mask, patch // 2)
            picks = centres[rng.integers(len(centres), size=options.crops["test"])]
            corners = [(int(y) - patch // 2, int(x) - patch // 2) for y, x in picks]
            for level, key in _test_gt_levels(structure, keys).items():
                rows += _write_test_gt(task, gts[key], corners, names[key], level)
            for level in structure.levels:
                key = level_key(level)
                wf = protocol.widefield(read_level(files[key], label=labels[key]))
                rows += _write_test_wf(task, wf, level, corners, names)
        else:
            rotate = options.rotate
            half = protocol.region_half(patch, rotate)
            crops, flips = options.crops[split], options.flips
            n = options.pairs_per_cell(split)
            if len(gts) == 1:
                centres = protocol.valid_centres(next(iter(masks.values())), half)
                picks = centres[rng.integers(len(centres), size=n)]
            else:  # each level's crops from its own GT's foreground
                per_level = []
                for level in structure.levels:
                    centres = protocol.valid_centres(masks[keys[level]], half)
                    per_level.append(centres[rng.integers(len(centres), size=flips * crops)])
                picks = np.concatenate(per_level)
            angles = rng.integers(1, 361, size=n) if rotate else np.zeros(n, dtype=int)
            k = 0
            for level in structure.levels:
                key, gt = level_key(level), gts[keys[level]]
                wf = protocol.widefield(read_level(files[key], label=labels[key]))
                for variant in range(flips):
                    for _ in range(crops):
                        y, x = (int(v) - patch // 2 for v in picks[k])
                        pair = layout.pair(task.dataset, split, task.first + k, structure=structure)
                        prov = {
                            "cell": cell,
                            "photon_level": level,
                            "crop_y": y,
                            "crop_x": x,
                            "angle": int(angles[k]),
                            "flip": protocol.FLIP_NAMES[variant],
                        }
                        wf_p, gt_p = protocol.crop_pair(wf, gt, (y, x), patch, float(angles[k]))
                        _write_pair(pair, wf_p, gt_p, variant, options)
                        rows.append(file_row(task.dataset, pair, "wf", **prov, source=names[key]))
                        rows.append(
                            file_row(task.dataset, pair, "gt", **prov, source=names[keys[level]])
                        )
                        k += 1
    _write_part(_part_file(work, task), rows)
    return rows


def _mask(gt: np.ndarray, scale: int, options: BuildOptions) -> np.ndarray:
    """The foreground mask of crop centres: the GT resized onto the WF grid, thresholded."""
    wf_shape = (gt.shape[0] // scale, gt.shape[1] // scale)
    return protocol.foreground_mask(
        protocol.gt_to_wf_grid(gt, wf_shape),
        threshold=options.mask_threshold,
        min_pixels=options.mask_min_pixels,
        factor=options.mask_factor,
        background_sigma=options.mask_background_sigma,
    )


def _test_gt_levels(structure: layout.Structure, keys: dict[int, str]) -> dict[int, str]:
    """``{level: GT key}`` of the test targets to write: one per test GT folder of the layout.

    One GT for every level is written once, at the first level's path (the
    folder all levels share); a GT per level (ER) is written at each level's
    own folder (:func:`biosr.layout.split_dirs` gives it one).
    """
    firsts: dict[Any, int] = {}
    for level in structure.levels:
        folder = layout.split_dirs("test", level, structure=structure)[1]
        firsts.setdefault((folder, keys[level]), level)
    return {level: keys[level] for level in firsts.values()}


def _normalize(patch: np.ndarray, options: BuildOptions) -> np.ndarray:
    return protocol.normalize(patch, options.normalize, percentiles=options.percentiles)


def _finish_gt(gt_p: np.ndarray, options: BuildOptions) -> np.ndarray:
    if options.gt_scale == 1:
        gt_p = protocol.bin_mean(gt_p, options.native_scale())
    return _normalize(gt_p, options)


def _wf_pixel_nm(options: BuildOptions) -> float:
    return layout.get_structure(options.structure).pixel_size_wf_nm


def _gt_pixel_nm(options: BuildOptions) -> float:
    chosen = layout.get_structure(options.structure)
    return chosen.pixel_size_wf_nm if options.gt_scale == 1 else chosen.pixel_size_gt_nm


def _write_pair(
    pair: layout.Pair, wf_p: np.ndarray, gt_p: np.ndarray, variant: int, options: BuildOptions
) -> None:
    wf_p = _normalize(protocol.flip(wf_p, variant), options)
    gt_p = _finish_gt(protocol.flip(gt_p, variant), options)
    write_tiff(pair.wf, wf_p, pixel_size_nm=_wf_pixel_nm(options))
    write_tiff(pair.gt, gt_p, pixel_size_nm=_gt_pixel_nm(options))


def _write_test_gt(task, gt, corners, source, level) -> list[dict[str, Any]]:
    options = task.options
    structure = layout.get_structure(options.structure)
    patch, s, rows = options.patch_size, structure.gt_scale, []
    for i, (y, x) in enumerate(corners):
        pair = layout.pair(task.dataset, "test", task.first + i, level, structure=structure)
        gt_p = gt[s * y : s * (y + patch), s * x : s * (x + patch)]
        write_tiff(pair.gt, _finish_gt(gt_p, options), pixel_size_nm=_gt_pixel_nm(options))
        prov = {"cell": task.cell, "crop_y": y, "crop_x": x, "angle": 0, "flip": "none"}
        rows.append(file_row(task.dataset, pair, "gt", **prov, source=source))
    return rows


def _write_test_wf(task, wf, level, corners, names) -> list[dict[str, Any]]:
    options = task.options
    structure = layout.get_structure(options.structure)
    patch, rows = options.patch_size, []
    for i, (y, x) in enumerate(corners):
        pair = layout.pair(task.dataset, "test", task.first + i, level, structure=structure)
        write_tiff(
            pair.wf,
            _normalize(wf[y : y + patch, x : x + patch], options),
            pixel_size_nm=_wf_pixel_nm(options),
        )
        prov = {"cell": task.cell, "crop_y": y, "crop_x": x, "angle": 0, "flip": "none"}
        rows.append(file_row(task.dataset, pair, "wf", **prov, source=names[level_key(level)]))
    return rows


def _sweep_parts(dataset: Path) -> None:
    """Remove temporary files that killed workers of an earlier run left behind."""
    for folder, _, files in os.walk(dataset):
        for name in files:
            if is_part(name):
                Path(folder, name).unlink(missing_ok=True)


def _card(
    src: Source, options: BuildOptions, seed: int, fingerprint: str, total: dict[str, int]
) -> dict[str, Any]:
    structure = layout.get_structure(options.structure)
    gt_side = options.patch_size * options.gt_scale
    native = structure.gt_scale
    gt_file = structure.sim_gt_file
    if structure.gt_per_level:
        gt_file = f"{structure.sim_gt_file_name(structure.levels[0])} ... (one per level)"
    binned = f", {native}x{native} binned onto the WF grid" if options.gt_scale == 1 else ""
    return card_base(
        structure=structure,
        producer="biosr build",
        source={
            "path": str(src.path.resolve()),
            "kind": "zip" if src.zip_prefix is not None else "folder",
            "release_doi": layout.RELEASE_DOI,
            "fingerprint": src.fingerprint,
        },
        seed=seed,
        gt_scale=options.gt_scale,
        patch_size=options.patch_size,
        gt_size=gt_side,
        pixel_size_wf_nm=structure.pixel_size_wf_nm,
        pixel_size_gt_nm=_gt_pixel_nm(options),
        counts=total,
        levels=list(structure.levels),
        frames=structure.frames,
        release_gt_scale=native,
        protocol={
            "name": "DL-SR (Qiao et al. 2021), reimplemented in Python",
            "widefield": f"mean of the {structure.frames} raw SIM frames of a level",
            "ground_truth": gt_file + binned,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in options.flat().items()},
        },
        uncertain=list(structure.uncertain),
        checked=src.checked,
        build={"fingerprint": fingerprint},
    )
