"""Figures and pages of an evaluation: metric-vs-photons plots, a montage, an HTML page.

matplotlib is imported inside the functions (``pip install biosr[plot]``),
and figures are drawn on :class:`matplotlib.figure.Figure` objects with the
Agg canvas, never pyplot: no global state, no display needed. The page is
rendered from :class:`~biosr.evaluate.results.Results` with a Jinja2 template
(package data, ``templates/report.html.j2``), which escapes every value.
Every file is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from biosr import __version__, layout
from biosr.errors import BiosrError
from biosr.evaluate import metrics
from biosr.evaluate.results import (
    Results,
    best_methods,
    cell_text,
    level_label,
    metric_title,
    summary_notes,
)
from biosr.io.atomic import atomic_path, write_text
from biosr.io.tiff import read_tiff
from biosr.normalize import normalize

#: Percentiles each montage panel is scaled between (and clipped to) for display.
DISPLAY_PERCENTILES: tuple[float, float] = (0.5, 99.5)

#: The page's template, package data in :data:`TEMPLATES` (``biosr/evaluate/templates``).
TEMPLATE = "report.html.j2"
TEMPLATES = "templates"

#: Dataset-card fields the page shows as provenance, in this order (absent ones are skipped).
PROVENANCE_KEYS: tuple[str, ...] = (
    "structure",
    "producer",
    "source",
    "seed",
    "counts",
    "patch_size",
    "gt_size",
    "gt_scale",
    "pixel_size_wf_nm",
    "pixel_size_gt_nm",
    "biosr_version",
    "licence",
)


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise BiosrError(
            "plots need matplotlib: pip install 'biosr[plot]' (or pass --no-plots)"
        ) from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _subtitle(results: Results) -> str:
    p = results.protocol
    return f"{results.structure}, protocol {p['name']}, data range {p['data_range']:g}"


def plot_metric(results: Results, name: str, path: str | os.PathLike[str]) -> Path:
    """PNG of metric `name` versus photon count, one line (mean ± std) per method.

    Incomplete levels are left out of the line (a gap), never averaged.
    """
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    photons = np.array([results.photons[lev] for lev in results.levels])
    for method in results.methods:
        per = results.summary[method]
        mean = np.array([_num(per[lev][name]["mean"]) for lev in results.levels])
        std = np.array([_num(per[lev][name]["std"]) for lev in results.levels])
        ax.errorbar(photons, mean, yerr=std, marker="o", capsize=3, label=method)
    ref = results.reference.get("gt_resolution_nm")
    if name == "resolution_nm" and ref is not None:
        ax.axhline(ref, color="k", linestyle="--", linewidth=1, label="GT")
    ax.set_xscale("log")
    ax.set_xticks(
        photons, [f"{p:.0f}\nL{lev}" for p, lev in zip(photons, results.levels, strict=True)]
    )
    ax.minorticks_off()
    unit = f" [{metrics.UNITS[name]}]" if metrics.UNITS[name] else ""
    ax.set_xlabel("nominal photons / level")
    ax.set_ylabel(name + unit)
    ax.set_title(f"{name} vs signal ({_subtitle(results)})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, Path(path))


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def write_plots(results: Results, out: str | os.PathLike[str]) -> dict[str, Path]:
    """One ``plot_<metric>.png`` per metric in `out`; returns ``{"plot_<metric>": path}``."""
    out = Path(out)
    return {f"plot_{n}": plot_metric(results, n, out / f"plot_{n}.png") for n in metrics.METRICS}


def _display(image: np.ndarray) -> np.ndarray:
    return normalize(image, "percentile", percentiles=DISPLAY_PERCENTILES, clip=True)


def write_montage(
    results: Results,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    index: int | None = None,
    levels: tuple[int, ...] | None = None,
) -> Path | None:
    """``montage.png``: rows of levels, columns WF | each method | GT, for one test image.

    The rows are `levels`, default :func:`biosr.layout.sample_levels` of the evaluated
    levels (1, 5, 9 of Microtubules' nine; 1, 3, 6 of ER's six). Each panel
    is scaled to its own :data:`DISPLAY_PERCENTILES`. Returns None when none
    of `levels` was evaluated or no prediction of `index` exists.
    """
    if levels is None:
        levels = layout.sample_levels(results.levels)
    levels = tuple(lev for lev in levels if lev in results.levels)
    scored = {(r["method"], r["level"], r["index"]): r["path"] for r in results.rows}
    if index is None:
        indices = sorted({i for (_, lev, i) in scored if lev in levels})
        index = indices[0] if indices else None
    if not levels or index is None:
        return None
    base = layout.dataset_dir(data, structure=results.structure)
    columns = ["WF", *results.methods, "GT"]
    fig = _figure(1.6 * len(columns), 1.7 * len(levels) + 0.4)
    axes = fig.subplots(len(levels), len(columns), squeeze=False)
    for row, lev in enumerate(levels):
        pair = layout.pair(base, "test", index, lev, structure=results.structure)
        for col, name in enumerate(columns):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if name == "WF":
                path = pair.wf
            elif name == "GT":
                path = pair.gt
            else:
                path = scored.get((name, lev, index))
            if path is not None:
                ax.imshow(_display(read_tiff(path, dtype=None)), cmap="gray", vmin=0, vmax=1)
            else:
                ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=ax.transAxes)
            if row == 0:
                ax.set_title(name, fontsize=9)
            if col == 0:
                ax.set_ylabel(level_label(lev, results), fontsize=8)
    fig.suptitle(f"test image {index:03d} ({_subtitle(results)})", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(out) / "montage.png")


def write_html(
    path: str | os.PathLike[str],
    results: Results,
    *,
    title: str = "biosr evaluation",
    intro: str = "",
    card: dict[str, Any] | None = None,
) -> Path:
    """The report page of `results`, rendered from the package's Jinja2 template.

    The page has the title, the protocol, one table per metric (methods x
    levels, the best value at each level marked), the problems found, the
    plots and the montage (linked beside the page, shown inline), and the
    dataset card's provenance.

    Parameters
    ----------
    path : path-like
        The page to write; images are linked relative to its folder, so
        write it in the folder that holds the PNGs.
    results : Results
        From :func:`biosr.evaluate.evaluation.evaluate` (its ``files`` give the PNGs).
    title : str, optional
        Page title.
    intro : str, optional
        Plain text shown under the title (the demo uses it); line breaks are kept.
    card : dict, optional
        The evaluated dataset's card (:func:`biosr.dataset.manifest.read_card`);
        None says that the dataset has none.

    Returns
    -------
    Path
        The written page.
    """
    import jinja2

    path = Path(path)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("biosr.evaluate", TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    page = env.get_template(TEMPLATE).render(
        title=title,
        intro=intro,
        version=__version__,
        structure=results.structure,
        methods=results.methods,
        levels=results.levels,
        protocol=results.protocol,
        protocol_items=[(k.replace("_", " "), v) for k, v in results.protocol.items()],
        headers=[level_label(lev, results) for lev in results.levels],
        tables=_tables(results),
        notes=summary_notes(results),
        findings=results.findings,
        figures=_figures(results, path.parent),
        provenance=_provenance(card),
        citation=(card or {}).get("citation", ""),
        card_file=layout.CARD_FILE,
    )
    write_text(path, page)
    return path


def _tables(results: Results) -> list[dict[str, Any]]:
    """One table per metric: rows of cells ``{"text", "best"}``."""
    tables = []
    for name in metrics.METRICS:
        best = best_methods(results, name)
        rows = [
            {
                "method": method,
                "cells": [
                    {
                        "text": cell_text(results, method, lev, name),
                        "best": method in best.get(lev, ()),
                    }
                    for lev in results.levels
                ],
            }
            for method in results.methods
        ]
        tables.append({"title": metric_title(name), "rows": rows})
    return tables


def _figures(results: Results, folder: Path) -> list[dict[str, str]]:
    """The PNGs of `results` (plots, then the montage) as links relative to `folder`."""
    figures = []
    for key, file in results.files.items():
        if not str(file).endswith(".png"):
            continue
        if key.startswith("plot_"):
            caption = f"{metric_title(key[5:])} versus nominal photons per level, mean ± std"
        else:
            caption = (
                "One test image at low, middle and high signal: the WF input, each method's "
                "prediction and the GT, each panel scaled to its 0.5 and 99.5 percentiles"
            )
        src = os.path.relpath(file, folder)
        figures.append({"key": key, "src": src, "caption": caption, "wide": key == "montage"})
    return figures


def _provenance(card: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The card's fields a reader asks first (who made the data, from what), as text."""
    if not card:
        return []
    items = []
    for key in PROVENANCE_KEYS:
        value = card.get(key)
        if value is None:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        items.append((key.replace("_", " "), str(value)))
    return items
