"""Score predictions on the test split, level by level, under one named protocol.

A prediction folder mirrors ``test_wf``: ``DIR/level_XX/NNN.tif`` (or
``DIR/test_wf/level_XX/NNN.tif``), one float image of the GT's shape per test
input; any method in any framework can write one. :func:`evaluate` checks
every folder against the dataset's test pairs (missing, extra, wrongly
shaped, non-finite files are each named), scores every valid pair with
:func:`biosr.evaluate.scoring.score_pair` in a process pool, and writes:

* ``per_image.csv``: one row per (method, level, image) with every metric;
* ``summary.json``: structure, protocol, data range, and per (method, level,
  metric) mean, standard deviation and counts, plus every finding;
* ``summary.md``: one Markdown table per metric, methods x levels;
* ``plot_<metric>.png`` (metric vs photon count) and ``montage.png`` and
  ``report.html`` (with ``plots=True``, via :mod:`biosr.evaluate.report`).

A level where a method has fewer valid predictions than test pairs is
*incomplete*: its images are scored in the CSV, but it gets no mean in the
summary and is shown as ``incomplete (n/N)`` in the tables.

The levels, their nominal photon counts and the GT's pixel size are those of
the dataset's BioSR structure (:func:`biosr.layout.structure_of`: ER has 6
levels, F-actin 12, the others 9; the nonlinear-SIM GT may be 3x the WF), and
every output names the structure.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from biosr import _parallel, layout
from biosr._checks import check_positive_int
from biosr.dataset.manifest import read_card
from biosr.errors import BiosrError, DataError
from biosr.evaluate import metrics, scoring
from biosr.evaluate.datasets import check_levels, dataset_of
from biosr.evaluate.results import Results, format_csv, format_markdown, summary_json
from biosr.io import owner
from biosr.io.atomic import write_text
from biosr.io.tiff import read_tiff

#: Output file names inside the report folder.
CSV_FILE, JSON_FILE, MD_FILE = "per_image.csv", "summary.json", "summary.md"
#: The producer name a report folder is claimed for (:mod:`biosr.io.owner`).
PRODUCER = "evaluate"


def parse_prediction_specs(specs: Iterable[str]) -> dict[str, Path]:
    """``["DIR", "NAME=DIR", ...]`` to ``{name: folder}``; a folder's name is the default name.

    Examples
    --------
    >>> {k: v.as_posix() for k, v in parse_prediction_specs(["out/rl", "mine=x/y"]).items()}
    {'rl': 'out/rl', 'mine': 'x/y'}
    """
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep:
            name, folder = Path(spec).resolve().name, spec
        if not name or not folder:
            raise BiosrError(f"{spec}: expected DIR or NAME=DIR")
        if name in out:
            raise BiosrError(f"{spec}: method name {name!r} given twice; use NAME=DIR")
        out[name] = Path(folder)
    return out


def prediction_root(folder: str | os.PathLike[str]) -> Path:
    """The folder holding ``level_XX`` folders: `folder` or its ``test_wf`` child."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: prediction folder not found")
    nested = folder / layout.split_roots("test")[0]
    return nested if nested.is_dir() else folder


def test_pairs(
    data: str | os.PathLike[str],
    levels: Iterable[int] | None = None,
    *,
    structure: str | layout.Structure | None = None,
) -> dict[tuple[int, int], layout.Pair]:
    """Test pairs by ``(level, index)``; DataError if there are none or a GT is missing."""
    base, chosen = dataset_of(data, structure)
    lev = None if levels is None else list(levels)
    pairs = layout.pairs(base, "test", lev, structure=chosen)
    if not pairs:
        raise DataError(f"{base}: no test pairs (expected test_wf/level_XX/NNN.tif)")
    for p in pairs:
        if not p.gt.is_file():
            raise DataError(f"{p.gt}: GT of test input {p.wf.name} missing; run `biosr verify`")
    return {(p.level, p.index): p for p in pairs}


def discover(
    folder: str | os.PathLike[str],
    expected: Iterable[tuple[int, int]],
    *,
    structure: str | layout.Structure | None = None,
) -> tuple[dict[tuple[int, int], Path], list[tuple[str, str]]]:
    """Match a prediction folder to the expected ``(level, index)`` keys.

    Level folders are those of `structure` (default Microtubules: ``level_01``
    .. ``level_09``).

    Returns
    -------
    found : dict
        ``(level, index)`` to prediction file, for expected keys present.
    findings : list of (path, reason)
        Missing predictions and extra files or folders, each named. Level
        folders outside the expected keys' levels are ignored.
    """
    root = prediction_root(folder)
    chosen = layout.get_structure(structure)
    known = chosen.levels
    span = "..".join(layout.level_dir(lv, structure=chosen) for lv in (known[0], known[-1]))
    expected = set(expected)
    wanted_levels = {lev for lev, _ in expected}
    found: dict[tuple[int, int], Path] = {}
    findings: list[tuple[str, str]] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue
        level = layout.parse_level_dir(entry.name, structure=chosen) if entry.is_dir() else None
        if level is None:
            if entry.is_dir() or entry.name.endswith(layout.SUFFIX):
                findings.append((str(path), f"extra: not a {span} folder of test_wf"))
            continue
        if level not in wanted_levels:
            continue  # a level not asked for (e.g. --levels 9 on a complete folder)
        for item in sorted(os.scandir(path), key=lambda e: e.name):
            if item.name.startswith("."):
                continue
            index = layout.parse_file_name("test", item.name) if item.is_file() else None
            if index is None:
                findings.append((item.path, "extra: not a test image name (NNN.tif)"))
            elif (level, index) not in expected:
                findings.append((item.path, "extra: no such test pair"))
            else:
                found[(level, index)] = Path(item.path)
    for level, index in sorted(expected - set(found)):
        missing = root / layout.level_dir(level, structure=chosen) / layout.file_name("test", index)
        findings.append((str(missing), "missing prediction"))
    return found, findings


class ScoreJob(NamedTuple):
    """One method's predictions of one GT image, at all the levels it is the target of.

    A worker's job. Most structures share one test GT across the levels; ER
    has one per level (``test_gt/level_XX``), and then a job holds one level.
    """

    method: str
    index: int
    gt_path: str
    predictions: list[tuple[int, str]]  # (level, path)
    protocol: str
    pixel_size_nm: float
    with_gt: bool  # also estimate the GT's resolution (once per image, with the first method)


def _score_task(job: ScoreJob) -> tuple[list[dict], list[tuple[str, str]], float | None]:
    """Score one method's predictions of one GT image at all its levels (runs in a worker)."""
    method, index, protocol, pixel_size_nm = job.method, job.index, job.protocol, job.pixel_size_nm
    gt = read_tiff(job.gt_path, dtype=None)
    rows, findings = [], []
    for level, path in job.predictions:
        try:
            pred = read_tiff(path, shape=gt.shape, dtype=None)
        except DataError as exc:
            findings.append((str(path), str(exc).removeprefix(f"{path}: ")))
            continue
        scores = scoring.score_pair(gt, pred, protocol=protocol, pixel_size_nm=pixel_size_nm)
        rows.append({"method": method, "level": level, "index": index, **scores, "path": path})
    gt_res = metrics.resolution_nm(gt, pixel_size_nm) if job.with_gt else None
    return rows, findings, gt_res


def evaluate(
    data: str | os.PathLike[str],
    predictions: dict[str, str | os.PathLike[str]],
    out: str | os.PathLike[str] | None,
    *,
    protocol: str = "dlsr",
    levels: Sequence[int] | None = None,
    structure: str | layout.Structure | None = None,
    workers: int = _parallel.DEFAULT_WORKERS,
    plots: bool = True,
    montage_index: int | None = None,
    progress: bool = False,
    force: bool = False,
) -> Results:
    """Score prediction folders against a dataset's test split and write the report.

    Parameters
    ----------
    data : path-like
        Dataset root (folder containing ``BioSR/``, or a dataset folder such as
        ``Microtubules``).
    predictions : dict of str to path-like
        Method name to prediction folder (mirroring ``test_wf``).
    out : path-like or None
        Report folder (created); None scores without writing anything.
    protocol : {'dlsr', 'care'}
        Normalisation before scoring (see :mod:`biosr.evaluate.scoring`).
    levels : sequence of int, optional
        Levels to evaluate (default all of the structure's levels).
    structure : str or Structure, optional
        Which structure under ``data/BioSR/`` (default: Microtubules, or the
        only one there). The dataset's structure (its card's, else its folder
        name's) gives the levels, their photon counts and the GT pixel size;
        every output names it.
    workers : int, optional
        Processes scoring in parallel (default 1; results do not depend on it).
    plots : bool, optional
        Also write the PNG plots, the montage and ``report.html`` (needs
        matplotlib, ``pip install biosr[plot]``).
    montage_index : int, optional
        Test image shown in the montage (default: the first index).
    progress : bool, optional
        Show a progress bar.
    force : bool, optional
        Replace `out` even if it was not made by ``biosr evaluate``
        (:func:`biosr.io.owner.check_replaceable`; checked before scoring).

    Returns
    -------
    Results
        Rows, summary, findings and the written files.

    Raises
    ------
    BiosrError
        Unknown protocol, no predictions, a missing dataset or folder.
    """
    scoring.check_protocol(protocol)
    if not predictions:
        raise BiosrError("no prediction folders given")
    workers = check_positive_int(workers, "workers")
    if out is not None:
        owner.check_replaceable(out, PRODUCER, force=force)
    base, chosen = dataset_of(data, structure)
    levels = sorted(set(check_levels(levels or chosen.levels, base, chosen)))
    pairs = test_pairs(base, levels, structure=chosen)
    levels = sorted({lev for lev, _ in pairs})
    first = next(iter(pairs.values()))
    wf_shape = read_tiff(first.wf, dtype=None).shape
    gt_shape = read_tiff(first.gt, dtype=None).shape
    pixel_size_nm = layout.gt_pixel_size_nm(wf_shape, gt_shape, structure=chosen)
    results = Results(scoring.describe(protocol), list(predictions), levels, structure=chosen.name)
    results.protocol["pixel_size_nm"] = pixel_size_nm

    tasks = []
    targets: dict[tuple[int, str], list[int]] = {}  # (index, GT file): its levels
    for (level, index), p in sorted(pairs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        targets.setdefault((index, str(p.gt)), []).append(level)
    for m, (method, folder) in enumerate(predictions.items()):
        found, findings = discover(folder, pairs, structure=chosen)
        results.findings.extend(findings)
        for (index, gt_path), target_levels in targets.items():
            tasks.append(
                ScoreJob(
                    method=method,
                    index=index,
                    gt_path=gt_path,
                    predictions=[
                        (lev, str(found[(lev, index)]))
                        for lev in target_levels
                        if (lev, index) in found
                    ],
                    protocol=protocol,
                    pixel_size_nm=pixel_size_nm,
                    with_gt=m == 0,
                )
            )

    gt_res: list[float] = []
    outcomes = _parallel.run(
        _score_task, tasks, workers=workers, progress=progress, desc="scoring", unit="img"
    )
    for rows, findings, res in outcomes:
        results.rows.extend(rows)
        results.findings.extend(findings)
        if res is not None:
            gt_res.append(res)
    order = {name: i for i, name in enumerate(predictions)}
    results.rows.sort(key=lambda r: (order[r["method"]], r["level"], r["index"]))
    results.findings.sort()
    expected = {lev: sum(1 for (lv, _) in pairs if lv == lev) for lev in levels}
    results.summary = summarize(results.rows, list(predictions), expected)
    finite = [v for v in gt_res if math.isfinite(v)]
    results.reference = {
        "gt_resolution_nm": float(np.mean(finite)) if finite else None,
        "gt_resolution_n": len(finite),
    }
    if out is not None:
        write_outputs(
            results, out, data=base, plots=plots, montage_index=montage_index, force=force
        )
    return results


def summarize(rows: list[dict], methods: list[str], expected: dict[int, int]) -> dict:
    """Per (method, level): ``scored``, ``expected``, ``complete`` and per metric mean/std/n.

    Means and spreads are given only for complete levels (None otherwise).
    The resolution's ``n`` counts images where decorrelation found signal.
    """
    summary: dict = {}
    for method in methods:
        summary[method] = {}
        for level, n_expected in expected.items():
            sel = [r for r in rows if r["method"] == method and r["level"] == level]
            complete = len(sel) == n_expected
            entry: dict = {"scored": len(sel), "expected": n_expected, "complete": complete}
            for name in metrics.METRICS:
                values = np.array([r[name] for r in sel], dtype=np.float64)
                values = values[np.isfinite(values)]
                stats = {"mean": None, "std": None, "n": int(values.size)}
                if complete and values.size:
                    stats["mean"] = float(values.mean())
                    stats["std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
                entry[name] = stats
            summary[method][level] = entry
    return summary


# --------------------------------------------------------------------------- #
# Outputs
# --------------------------------------------------------------------------- #


def write_outputs(
    results: Results,
    out: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str],
    plots: bool = True,
    montage_index: int | None = None,
    title: str = "biosr evaluation",
    intro: str = "",
    force: bool = False,
) -> dict[str, Path]:
    """Write CSV, JSON and Markdown (and plots, montage, HTML) into `out`; return their paths.

    `title` and `intro` are those of ``report.html`` (:func:`biosr.evaluate.report.write_html`).
    The report is written into a temporary folder that then replaces `out`
    whole (:func:`biosr.io.owner.replaced_folder`): a killed run leaves the
    old report, never a mix; a folder not made by ``biosr evaluate`` is
    refused unless `force`; a user's own files in `out` are kept.
    """
    final = Path(out)
    with owner.replaced_folder(final, PRODUCER, force=force) as out:
        _write_report(
            results,
            out,
            data=data,
            plots=plots,
            montage_index=montage_index,
            title=title,
            intro=intro,
        )
    results.files = {
        k: final / Path(v).relative_to(out) if Path(v).is_relative_to(out) else Path(v)
        for k, v in results.files.items()
    }
    return results.files


def _write_report(
    results: Results,
    out: Path,
    *,
    data: str | os.PathLike[str],
    plots: bool,
    montage_index: int | None,
    title: str,
    intro: str,
) -> None:
    files = {"csv": out / CSV_FILE, "json": out / JSON_FILE, "markdown": out / MD_FILE}
    write_text(files["csv"], format_csv(results))
    write_text(files["json"], json.dumps(summary_json(results), indent=2) + "\n")
    write_text(files["markdown"], format_markdown(results))
    results.files.update(files)
    if plots:
        from biosr.evaluate import report

        results.files.update(report.write_plots(results, out))
        montage = report.write_montage(results, data, out, index=montage_index)
        if montage is not None:
            results.files["montage"] = montage
        card = read_card(layout.dataset_dir(data, structure=results.structure))
        results.files["html"] = report.write_html(
            out / "report.html", results, title=title, intro=intro, card=card
        )
