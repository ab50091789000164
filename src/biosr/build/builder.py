"""Build the published dataset from the original BioSR release: plan, workers, resume, provenance.

:func:`build` checks the whole source first (nothing is written if any file
is missing or its MRC header disagrees with its size, mode or shape; the
image data itself is read, and a corrupt zip member found, only while
cutting), then cuts each cell in a worker process
(:class:`concurrent.futures.ProcessPoolExecutor`, one cell in memory per
worker). Every random choice of a cell comes from its own
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

from biosr import layout
from biosr.build import produce
from biosr.build import protocol
from biosr._progress import bar
from biosr.errors import BiosrError, DataError
from biosr.io.atomic import is_part, write_text
from biosr.io.tiff import write_tiff
from biosr.dataset.manifest import card_base, file_row, read_card, write_card, write_manifest
from biosr.build.source import GT_KEY, Source, cell_files, open_source, parse_cells, read_gt, read_level

_PLAN_FILE = "plan.json"
_SPLIT_ORDER = ("validate", "training", "test")

#: Protocol parameters of each preset. ``published`` is the authors' protocol
#: (41,040 / 2,160 / 150 x 9 pairs from 50 of 55 cells); ``small`` cuts a
#: 6-cell release (e.g. a small simulated one) into 216 / 72 / 6 x 9 pairs.
PRESETS: dict[str, dict[str, Any]] = {
    "published": {
        "training_cells": layout.PUBLISHED_CELLS["training"],
        "validate_cells": layout.PUBLISHED_CELLS["validate"],
        "test_cells": layout.PUBLISHED_CELLS["test"],
        "training_crops": layout.PUBLISHED_CROPS["training"],
        "validate_crops": layout.PUBLISHED_CROPS["validate"],
        "test_crops": layout.PUBLISHED_CROPS["test"],
        "flips": layout.FLIPS,
        "rotate": True,
        "patch_size": layout.PATCH_SIZE,
        "gt_scale": 1,
        "normalize": "minmax",
        "percentiles": (0.0, 99.9),
        "mask_threshold": 1e-2,
        "mask_min_pixels": 1000,
        "mask_factor": 0.8,
        "mask_background_sigma": 50.0,
    },
}
PRESETS["small"] = {
    **PRESETS["published"],
    "training_cells": (2, 3, 4),
    "validate_cells": (1,),
    "test_cells": (5, 6),
    "training_crops": 2,
    "validate_crops": 2,
    "test_crops": 3,
}


class Task(NamedTuple):
    """One cell's work: everything a worker needs, picklable."""

    source: Source
    dataset: Path
    split: str
    cell: int
    first: int
    params: dict[str, Any]
    seed: int


def resolve_params(preset: str = "published", **overrides: Any) -> dict[str, Any]:
    """Protocol parameters of `preset` with `overrides` applied and checked.

    Cell lists may be given as tuples or as text (``"6-35"``, ``"1,3,5"``).

    Raises
    ------
    BiosrError
        On an unknown preset or option, a bad value, or a cell in two splits.
    """
    if preset not in PRESETS:
        raise BiosrError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    params = dict(PRESETS[preset])
    unknown = set(overrides) - set(params)
    if unknown:
        raise BiosrError(
            f"unknown build option(s) {', '.join(sorted(unknown))}; valid: {', '.join(params)}"
        )
    params.update({k: v for k, v in overrides.items() if v is not None})
    for split in layout.SPLITS:
        cells = params[f"{split}_cells"]
        params[f"{split}_cells"] = parse_cells(cells) if isinstance(cells, str) else tuple(cells)
        if int(params[f"{split}_crops"]) < 0:
            raise BiosrError(f"{split}_crops must be >= 0, got {params[f'{split}_crops']}")
        params[f"{split}_crops"] = int(params[f"{split}_crops"])
    seen: dict[int, str] = {}
    for split in layout.SPLITS:
        for cell in params[f"{split}_cells"]:
            if cell in seen:
                raise BiosrError(f"cell {cell} is in both the {seen[cell]} and {split} cells")
            seen[cell] = split
    for key in ("flips", "patch_size", "gt_scale"):
        params[key] = int(params[key])
    if params["gt_scale"] not in (1, 2):
        raise BiosrError(f"gt_scale must be 1 or 2, got {params['gt_scale']}")
    if params["normalize"] not in protocol.NORMALIZATIONS:
        raise BiosrError(
            f"unknown normalisation {params['normalize']!r}; "
            f"valid: {', '.join(protocol.NORMALIZATIONS)}"
        )
    if not 1 <= params["flips"] <= 4:
        raise BiosrError(f"flips must be 1..4, got {params['flips']}")
    params["percentiles"] = tuple(float(p) for p in params["percentiles"])
    return params


def counts(params: dict[str, Any]) -> dict[str, int]:
    """Pairs per split (test: per level) that `params` produce."""
    per_cell = {
        "training": len(layout.LEVELS) * params["flips"] * params["training_crops"],
        "validate": len(layout.LEVELS) * params["flips"] * params["validate_crops"],
        "test": params["test_crops"],
    }
    return {s: per_cell[s] * len(params[f"{s}_cells"]) for s in layout.SPLITS}


def build(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    preset: str = "published",
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    overwrite: bool = False,
    **overrides: Any,
) -> Path:
    """Cut the original release into the published layout, with manifest and card.

    Parameters
    ----------
    source : path-like
        Extracted release (folder of ``Cell_XXX``, or its parent holding
        ``Microtubules/``) or ``Microtubules.zip``. Never modified.
    out : path-like
        Root to write ``BioSR/Microtubules`` under (or that folder itself).
    preset : str
        ``"published"`` (the authors' protocol) or ``"small"`` (6 cells).
    seed : int
        Seed of every random choice; same source and seed give bit-identical
        files whatever `workers` is.
    workers : int
        Processes, one cell each at a time.
    progress : bool
        Show a progress bar of cells (and pairs) on stderr.
    overwrite : bool
        Replace a different dataset already at `out` (its split folders,
        manifest, card and work folder only).
    **overrides
        Protocol options: ``training_cells``, ``validate_cells``,
        ``test_cells`` (tuples or text like ``"6-35"``), ``training_crops``,
        ``validate_crops``, ``test_crops``, ``flips``, ``rotate``,
        ``patch_size``, ``gt_scale`` (1: GT binned 2x2 onto the WF grid, 2:
        DL-SR's 128/256 pairs), ``normalize`` (minmax, percentile, none),
        ``percentiles``, ``mask_threshold``, ``mask_min_pixels``,
        ``mask_factor``, ``mask_background_sigma``.

    Returns
    -------
    Path
        The built ``Microtubules`` folder.

    Raises
    ------
    DataError
        A bad source (one line naming the file; nothing written when a file
        is missing or its header is wrong, but a corrupt zip member is found
        only when its cell is cut) or an output folder holding a different
        dataset.
    """
    params = resolve_params(preset, **overrides)
    cells = tuple(c for s in layout.SPLITS for c in params[f"{s}_cells"])
    src = open_source(source, cells)
    _check_geometry(src, params)
    dataset = layout.dataset_dir(out, must_exist=False)
    fingerprint = _fingerprint(params, seed, src)
    work = dataset / layout.BUILD_DIR
    if _prepare_output(dataset, fingerprint, overwrite=overwrite) == "done":
        return dataset
    work.mkdir(parents=True, exist_ok=True)
    write_text(work / _PLAN_FILE, json.dumps({"fingerprint": fingerprint}) + "\n")
    produce.make_split_dirs(dataset)

    tasks = _plan(src, dataset, params, seed)
    rows: list[dict[str, Any]] = []
    todo = []
    for task in tasks:
        done = _read_part(_part_file(work, task))
        if done is None:
            todo.append(task)
        else:
            rows.extend(done)
    total = counts(params)
    desc = (
        f"build {total['training']}+{total['validate']}+{total['test']}x{len(layout.LEVELS)} "
        "pairs, cells"
    )
    for cell_rows in bar(
        produce.run_jobs(build_cell, todo, workers=workers),
        enabled=progress,
        total=len(todo),
        desc=desc,
        unit="cell",
    ):
        rows.extend(cell_rows)

    write_manifest(dataset, rows)
    write_card(dataset, _card(src, params, seed, fingerprint, total))
    _sweep_parts(dataset)
    shutil.rmtree(work, ignore_errors=True)
    return dataset


def _check_geometry(src: Source, params: dict[str, Any]) -> None:
    patch = int(params["patch_size"])
    if patch < 2 or patch % 2:
        raise BiosrError(f"patch_size must be an even number >= 2, got {patch}")
    for cell, entry in src.cells.items():
        name, (_, _, ny, nx) = entry["level_01"]
        train = cell not in params["test_cells"]
        need = 2 * protocol.region_half(patch, bool(params["rotate"]) and train)
        if min(ny, nx) < need:
            raise DataError(
                f"{src.path}/{name}: frames {ny}x{nx} are smaller than the {need} px "
                f"region a {patch} px patch needs"
            )


def _fingerprint(params: dict[str, Any], seed: int, src: Source) -> str:
    blob = json.dumps({"params": params, "seed": seed, "source": src.fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _prepare_output(dataset: Path, fingerprint: str, *, overwrite: bool) -> str:
    """``"fresh"``, ``"resume"`` or ``"done"``; raise if `dataset` holds something else."""
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
    produce.clear_dataset(dataset)
    return "fresh"


def _plan(src: Source, dataset: Path, params: dict[str, Any], seed: int) -> list[Task]:
    """One task per cell; file indices follow the cell order of each split."""
    per_cell = {s: counts({**params, f"{s}_cells": (0,)})[s] for s in layout.SPLITS}
    tasks = []
    for split in _SPLIT_ORDER:
        for pos, cell in enumerate(params[f"{split}_cells"]):
            first = 1 + pos * per_cell[split]
            tasks.append(Task(src, dataset, split, cell, first, params, seed))
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

    The cell's done-marker (its rows, under ``.biosr_build/``) is written
    only after all its files are in place.
    """
    params, split, cell = task.params, task.split, task.cell
    work = task.dataset / layout.BUILD_DIR
    rng = np.random.default_rng(produce.cell_seed(task.seed, cell))
    patch = int(params["patch_size"])
    rows: list[dict[str, Any]] = []
    with cell_files(task.source, cell, work / "scratch") as files:
        gt = read_gt(files[GT_KEY]).astype(np.float32)
        names = {key: name for key, (name, _) in task.source.cells[cell].items()}
        wf_shape = (gt.shape[0] // 2, gt.shape[1] // 2)
        mask = protocol.foreground_mask(
            protocol.gt_to_wf_grid(gt, wf_shape),
            threshold=params["mask_threshold"],
            min_pixels=params["mask_min_pixels"],
            factor=params["mask_factor"],
            background_sigma=params["mask_background_sigma"],
        )
        if split == "test":
            centres = protocol.valid_centres(mask, patch // 2)
            picks = centres[rng.integers(len(centres), size=params["test_crops"])]
            corners = [(int(y) - patch // 2, int(x) - patch // 2) for y, x in picks]
            rows += _write_test_gt(task, gt, corners, names)
            for level in layout.LEVELS:
                wf = protocol.widefield(read_level(files[f"level_{level:02d}"]))
                rows += _write_test_wf(task, wf, level, corners, names)
        else:
            rotate = bool(params["rotate"])
            centres = protocol.valid_centres(mask, protocol.region_half(patch, rotate))
            crops, flips = params[f"{split}_crops"], int(params["flips"])
            n = len(layout.LEVELS) * flips * crops
            picks = centres[rng.integers(len(centres), size=n)]
            angles = rng.integers(1, 361, size=n) if rotate else np.zeros(n, dtype=int)
            k = 0
            for level in layout.LEVELS:
                key = f"level_{level:02d}"
                wf = protocol.widefield(read_level(files[key]))
                for variant in range(flips):
                    for _ in range(crops):
                        y, x = (int(v) - patch // 2 for v in picks[k])
                        pair = layout.pair(task.dataset, split, task.first + k)
                        prov = {
                            "cell": cell,
                            "photon_level": level,
                            "crop_y": y,
                            "crop_x": x,
                            "angle": int(angles[k]),
                            "flip": protocol.FLIP_NAMES[variant],
                        }
                        wf_p, gt_p = protocol.crop_pair(wf, gt, (y, x), patch, float(angles[k]))
                        _write_pair(pair, wf_p, gt_p, variant, params)
                        rows.append(file_row(task.dataset, pair, "wf", **prov, source=names[key]))
                        rows.append(
                            file_row(task.dataset, pair, "gt", **prov, source=names[GT_KEY])
                        )
                        k += 1
    _write_part(_part_file(work, task), rows)
    return rows


def _finish_gt(gt_p: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    gt_p = protocol.bin2(gt_p) if params["gt_scale"] == 1 else gt_p
    return protocol.normalize(gt_p, params["normalize"], params["percentiles"])


def _gt_pixel_nm(params: dict[str, Any]) -> float:
    return layout.PIXEL_SIZE_WF_NM if params["gt_scale"] == 1 else layout.PIXEL_SIZE_GT_NM


def _write_pair(
    pair: layout.Pair, wf_p: np.ndarray, gt_p: np.ndarray, variant: int, params: dict[str, Any]
) -> None:
    wf_p = protocol.normalize(
        protocol.flip(wf_p, variant), params["normalize"], params["percentiles"]
    )
    gt_p = _finish_gt(protocol.flip(gt_p, variant), params)
    write_tiff(pair.wf, wf_p, pixel_size_nm=layout.PIXEL_SIZE_WF_NM)
    write_tiff(pair.gt, gt_p, pixel_size_nm=_gt_pixel_nm(params))


def _write_test_gt(task, gt, corners, names) -> list[dict[str, Any]]:
    patch, rows = int(task.params["patch_size"]), []
    for i, (y, x) in enumerate(corners):
        pair = layout.pair(task.dataset, "test", task.first + i, layout.LEVELS[0])
        gt_p = gt[2 * y : 2 * (y + patch), 2 * x : 2 * (x + patch)]
        write_tiff(pair.gt, _finish_gt(gt_p, task.params), pixel_size_nm=_gt_pixel_nm(task.params))
        prov = {"cell": task.cell, "crop_y": y, "crop_x": x, "angle": 0, "flip": "none"}
        rows.append(file_row(task.dataset, pair, "gt", **prov, source=names[GT_KEY]))
    return rows


def _write_test_wf(task, wf, level, corners, names) -> list[dict[str, Any]]:
    patch, rows = int(task.params["patch_size"]), []
    norm, pct = task.params["normalize"], task.params["percentiles"]
    for i, (y, x) in enumerate(corners):
        pair = layout.pair(task.dataset, "test", task.first + i, level)
        write_tiff(
            pair.wf,
            protocol.normalize(wf[y : y + patch, x : x + patch], norm, pct),
            pixel_size_nm=layout.PIXEL_SIZE_WF_NM,
        )
        prov = {"cell": task.cell, "crop_y": y, "crop_x": x, "angle": 0, "flip": "none"}
        source = names[f"level_{level:02d}"]
        rows.append(file_row(task.dataset, pair, "wf", **prov, source=source))
    return rows


def _sweep_parts(dataset: Path) -> None:
    """Remove temporary files that killed workers of an earlier run left behind."""
    for folder, _, files in os.walk(dataset):
        for name in files:
            if is_part(name):
                Path(folder, name).unlink(missing_ok=True)


def _card(
    src: Source, params: dict[str, Any], seed: int, fingerprint: str, total: dict[str, int]
) -> dict[str, Any]:
    gt_side = params["patch_size"] * params["gt_scale"]
    return card_base(
        producer="biosr build",
        source={
            "path": str(src.path.resolve()),
            "kind": "zip" if src.zip_prefix is not None else "folder",
            "release_doi": layout.RELEASE_DOI,
            "fingerprint": src.fingerprint,
        },
        seed=seed,
        gt_scale=params["gt_scale"],
        patch_size=params["patch_size"],
        gt_size=gt_side,
        pixel_size_wf_nm=layout.PIXEL_SIZE_WF_NM,
        pixel_size_gt_nm=_gt_pixel_nm(params),
        counts=total,
        protocol={
            "name": "DL-SR (Qiao et al. 2021), reimplemented in Python",
            "widefield": "mean of the 9 raw SIM frames of a level",
            "ground_truth": "SIM_gt.mrc"
            + (", 2x2 binned onto the WF grid" if params["gt_scale"] == 1 else ""),
            **{k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        },
        build={"fingerprint": fingerprint},
    )
