"""The results of an evaluation and their text forms: Markdown tables, CSV rows, JSON summary.

:class:`Results` is what :func:`biosr.evaluate.evaluation.evaluate` returns and
what :mod:`biosr.evaluate.report` draws and renders; both import it from here,
so neither imports the other. The table cells, their headers and the best
value per level are written once, for the Markdown and the HTML page alike.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from biosr import __version__, layout
from biosr.evaluate import metrics


@dataclass
class Results:
    """What :func:`biosr.evaluate.evaluation.evaluate` found and wrote.

    Attributes
    ----------
    protocol : dict
        :func:`biosr.evaluate.scoring.describe` of the protocol used.
    methods : list of str
        Method names, in the order given.
    levels : list of int
        Test levels evaluated.
    rows : list of dict
        One per scored image: method, level, photons, index, metrics, path.
    summary : dict
        ``summary[method][level][metric]`` = mean, std, n; plus ``complete``,
        ``scored`` and ``expected`` per (method, level).
    reference : dict
        ``gt_resolution_nm``: mean decorrelation resolution of the GT images
        (the same estimator as the predictions'; None if no image had
        signal), and ``gt_resolution_n``: the images it averages.
    findings : list of (str, str)
        ``(path, reason)`` for each bad or missing prediction.
    files : dict of str to Path
        Written outputs by kind (``csv``, ``json``, ``markdown``, plots...).
    structure : str
        The evaluated dataset's BioSR structure (:data:`biosr.layout.STRUCTURES`):
        its levels' photon counts label every table and plot.
    """

    protocol: dict
    methods: list[str]
    levels: list[int]
    rows: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    findings: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    structure: str = layout.DEFAULT_STRUCTURE

    @property
    def photons(self) -> dict[int, float]:
        """Nominal photons of each level of the structure (``Structure.photons``)."""
        return layout.get_structure(self.structure).photons

    @property
    def ok(self) -> bool:
        """True if every prediction was present and valid (no findings)."""
        return not self.findings

    def markdown(self) -> str:
        """The Markdown tables (methods x levels per metric)."""
        return format_markdown(self)


def _fmt(name: str, value: float) -> str:
    return (
        f"{value:.1f}"
        if name == "resolution_nm"
        else f"{value:.2f}"
        if name == "psnr"
        else (f"{value:.4f}")
    )


def format_markdown(results: Results) -> str:
    """Markdown: protocol line, then one methods x levels table per metric (mean ± std)."""
    p = results.protocol
    lines = [
        f"Structure **{results.structure}**. Protocol **{p['name']}**: GT "
        f"{p['gt_normalization']}; prediction {p['prediction_normalization']}; data range "
        f"{p['data_range']:g}; MS-SSIM "
        f"{p['ms_ssim_scales']} scales; resolution by {p['resolution']} at "
        f"{p['pixel_size_nm']:g} nm/px. Cells: mean ± std over the level's images.",
        "",
    ]
    header = "| method | " + " | ".join(level_label(lev, results) for lev in results.levels)
    rule = "|---|" + "---|" * len(results.levels)
    for name in metrics.METRICS:
        lines += [f"### {metric_title(name)}", "", header + " |", rule]
        for method in results.methods:
            cells = [cell_text(results, method, lev, name) for lev in results.levels]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += summary_notes(results)
    if results.findings:
        lines += ["", f"**{len(results.findings)} problem(s)** with the predictions:", ""]
        lines += [f"- `{path}`: {reason}" for path, reason in results.findings]
    return "\n".join(lines) + "\n"


def format_csv(results: Results) -> str:
    """The per-image CSV text (protocol and data range on every row)."""
    buf = io.StringIO()
    cols = [
        "structure",
        "method",
        "level",
        "photons",
        "index",
        *metrics.METRICS,
        "protocol",
        "data_range",
        "path",
    ]
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    photons = results.photons
    for r in results.rows:
        row = {**r, "structure": results.structure, "photons": f"{photons[r['level']]:.1f}"}
        row.update({k: repr(float(r[k])) for k in metrics.METRICS})
        row.update(protocol=results.protocol["name"], data_range=results.protocol["data_range"])
        writer.writerow(row)
    return buf.getvalue()


def summary_json(results: Results) -> dict:
    """The JSON summary: version, structure, protocol, levels with photons, summary, findings."""
    lo, hi = layout.PHOTON_RANGE
    n_levels = len(layout.get_structure(results.structure).levels)
    return {
        "biosr_version": __version__,
        "structure": results.structure,
        "protocol": results.protocol,
        "methods": results.methods,
        "levels": {str(lev): {"photons": results.photons[lev]} for lev in results.levels},
        "photons_note": f"nominal geometric ladder {lo:g}..{hi:g} photons over the "
        f"structure's {n_levels} levels (see biosr.layout)",
        "summary": {
            m: {str(lev): e for lev, e in per.items()} for m, per in results.summary.items()
        },
        "reference": results.reference,
        "complete": all(e["complete"] for per in results.summary.values() for e in per.values()),
        "findings": [{"path": p, "reason": r} for p, r in results.findings],
    }


def summary_notes(results: Results) -> list[str]:
    """The sentences under the tables: images per level, the GT's own resolution."""
    counts = sorted(
        {results.summary[m][lev]["expected"] for m in results.methods for lev in results.levels}
    )
    notes = [f"Images per level: {', '.join(map(str, counts))}."]
    ref = results.reference.get("gt_resolution_nm")
    if ref is not None:
        notes.append(f"GT resolution (decorrelation, same estimator): {ref:.1f} nm.")
    return notes


def level_label(level: int, results: Results | None = None) -> str:
    """A table column's header: ``L9 (600 ph)`` (photons of `results`' structure)."""
    photons = layout.PHOTONS if results is None else results.photons
    return f"L{level} ({photons[level]:.0f} ph)"


def metric_title(name: str) -> str:
    """A table's title: the metric, its unit and which way is better."""
    unit = f" [{metrics.UNITS[name]}]" if metrics.UNITS[name] else ""
    arrow = "higher" if metrics.HIGHER_IS_BETTER[name] else "lower"
    return f"{name}{unit} ({arrow} is better)"


def cell_text(results: Results, method: str, level: int, name: str) -> str:
    """A table cell: ``mean ± std`` of metric `name`, or why there is none.

    ``incomplete (n/N)`` for a level with missing or bad predictions (never
    averaged), ``n/a`` when no image gave a finite value, and ``(n=...)``
    when only some images did.
    """
    e = results.summary[method][level]
    s = e[name]
    if not e["complete"]:
        return f"incomplete ({e['scored']}/{e['expected']})"
    if s["mean"] is None:
        return "n/a"
    extra = "" if s["n"] == e["expected"] else f" (n={s['n']})"
    return f"{_fmt(name, s['mean'])} ± {_fmt(name, s['std'])}{extra}"


def best_methods(results: Results, name: str) -> dict[int, set[str]]:
    """The methods with the best mean of metric `name` at each level (ties: all of them).

    Only complete levels with a mean take part, and a level is marked only
    when at least two methods do (one method alone is not "best").

    Examples
    --------
    >>> r = Results({}, ["a", "b"], [9])
    >>> e = {"complete": True, "psnr": {"mean": 20.0}}
    >>> r.summary = {"a": {9: e}, "b": {9: {**e, "psnr": {"mean": 25.0}}}}
    >>> best_methods(r, "psnr")
    {9: {'b'}}
    """
    sign = 1.0 if metrics.HIGHER_IS_BETTER[name] else -1.0
    best: dict[int, set[str]] = {}
    for lev in results.levels:
        means = {
            m: sign * results.summary[m][lev][name]["mean"]
            for m in results.methods
            if results.summary[m][lev]["complete"]
            and results.summary[m][lev][name]["mean"] is not None
        }
        if len(means) >= 2:
            top = max(means.values())
            best[lev] = {m for m, v in means.items() if v == top}
    return best
