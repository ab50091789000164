"""Figures and pages of an evaluation: metric-vs-photons plots, a montage, an HTML page.

matplotlib is imported inside the functions (``pip install biosr[plot]``),
and figures are drawn on :class:`matplotlib.figure.Figure` objects with the
Agg canvas, never pyplot: no global state, no display needed. Every file is
written atomically.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from biosr import layout
from biosr.errors import BiosrError
from biosr.evaluate import metrics
from biosr.io.atomic import atomic_path, write_text
from biosr.io.tiff import read_tiff

if TYPE_CHECKING:  # pragma: no cover
    from biosr.evaluate.evaluation import Results

#: Levels shown in the montage (lowest, middle, highest signal).
MONTAGE_LEVELS: tuple[int, ...] = (1, 5, 9)


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
    return f"protocol {p['name']}, data range {p['data_range']:g}"


def plot_metric(results: Results, name: str, path: str | os.PathLike[str]) -> Path:
    """PNG of metric `name` versus photon count, one line (mean ± std) per method.

    Incomplete levels are left out of the line (a gap), never averaged.
    """
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    photons = np.array([layout.PHOTONS[lev] for lev in results.levels])
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
    lo, hi = np.percentile(image, [0.5, 99.5])
    return np.clip((image - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(image)


def write_montage(
    results: Results,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    index: int | None = None,
    levels: tuple[int, ...] = MONTAGE_LEVELS,
) -> Path | None:
    """``montage.png``: rows levels 1, 5, 9; columns WF | each method | GT, for one test image.

    Each panel is scaled to its own 0.5 and 99.5 percentiles. Returns None
    when none of `levels` was evaluated or no prediction of `index` exists.
    """
    levels = tuple(lev for lev in levels if lev in results.levels)
    scored = {(r["method"], r["level"], r["index"]): r["path"] for r in results.rows}
    if index is None:
        indices = sorted({i for (_, lev, i) in scored if lev in levels})
        index = indices[0] if indices else None
    if not levels or index is None:
        return None
    base = layout.dataset_dir(data)
    columns = ["WF", *results.methods, "GT"]
    fig = _figure(1.6 * len(columns), 1.7 * len(levels) + 0.4)
    axes = fig.subplots(len(levels), len(columns), squeeze=False)
    for row, lev in enumerate(levels):
        pair = layout.pair(base, "test", index, lev)
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
                ax.set_ylabel(f"L{lev} ({layout.PHOTONS[lev]:.0f} ph)", fontsize=8)
    fig.suptitle(f"test image {index:03d} ({_subtitle(results)})", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(out) / "montage.png")


def write_html(
    path: str | os.PathLike[str],
    results: Results,
    *,
    title: str = "biosr evaluation",
    intro: str = "",
) -> Path:
    """A self-contained-folder HTML page: protocol, tables, plots and montage of `results`.

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
        A paragraph of plain text shown under the title (the demo uses it).

    Returns
    -------
    Path
        The written page.
    """
    from biosr.evaluate.evaluation import format_markdown

    path = Path(path)
    parts = [
        "<!doctype html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
        "padding:2px 6px}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    parts.append(_markdown_to_html(format_markdown(results)))
    images = [(k, v) for k, v in results.files.items() if str(v).endswith(".png")]
    for key, image in images:
        rel = os.path.relpath(image, path.parent)
        parts.append(f'<h3>{html.escape(key)}</h3><img src="{html.escape(rel)}" alt="{key}">')
    parts.append("</body></html>")
    write_text(path, "\n".join(parts) + "\n")
    return path


def _markdown_to_html(text: str) -> str:
    """The few Markdown forms :func:`biosr.evaluate.evaluation.format_markdown` uses, as HTML."""
    out: list[str] = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"
            )
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("### "):
            out.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line:
            out.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)
