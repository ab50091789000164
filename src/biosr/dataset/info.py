"""Summarise a dataset copy: counts per split and level, shapes, value statistics, size on disk."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from biosr import layout
from biosr._checks import check_positive_int, check_seed
from biosr.dataset.manifest import read_card
from biosr.errors import DataError
from biosr.io.tiff import read_tiff


def dataset_info(
    root: str | os.PathLike[str],
    *,
    sample: int = 64,
    seed: int = 0,
    structure: str | layout.Structure | None = None,
) -> dict[str, Any]:
    """Describe a dataset copy.

    Parameters
    ----------
    root : path-like
        The folder containing ``BioSR/``, or a dataset folder (``Microtubules`` ...).
    sample : int, optional
        Pairs read per split (test: per level) for shape and value statistics.
    seed : int, optional
        Seed of the sample.
    structure : str or Structure, optional
        Which ``ROOT/BioSR/<structure>`` (default: Microtubules, or the only
        one there). Levels and photons follow the card's structure
        (:func:`biosr.layout.structure_of`).

    Returns
    -------
    dict
        ``dataset`` (path), ``structure`` (name), ``card`` (the dataset card or None), ``splits``: a
        list of per split/level dicts with ``split``, ``level``, ``photons``
        (nominal), ``pairs``, ``bytes`` (inputs and targets on disk),
        ``wf``/``gt`` (shape, dtype, min, max, mean, std, p1, p99 of the
        sampled images), and ``total_bytes``.

    Raises
    ------
    DataError
        If there is no dataset at `root`, or a sampled file is unreadable.
    BiosrError
        If `sample` is below 1 or `seed` is not a seed.
    """
    sample, seed = check_positive_int(sample, "sample"), check_seed(seed)
    asked = None if structure is None else layout.get_structure(structure, error=DataError)
    try:
        base = layout.dataset_dir(root, structure=asked)
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from None
    kind = layout.structure_of(base)
    rng = np.random.default_rng(seed)
    rows = []
    gt_bytes_counted: set[str] = set()
    for split in layout.SPLITS:
        for level in layout.split_levels(split, structure=kind):
            found = layout.pairs(base, split, level, structure=kind)
            if not found:
                continue
            nbytes = sum(_size(p.wf) for p in found)
            for p in found:  # a test target shared by the levels is counted once
                if str(p.gt) not in gt_bytes_counted:
                    gt_bytes_counted.add(str(p.gt))
                    nbytes += _size(p.gt)
            picks = rng.choice(len(found), size=min(sample, len(found)), replace=False)
            chosen = [found[i] for i in sorted(picks)]
            rows.append(
                {
                    "split": split,
                    "level": level,
                    "photons": kind.photons[level] if level is not None else None,
                    "pairs": len(found),
                    "bytes": nbytes,
                    "sampled": len(chosen),
                    "wf": _stats([read_tiff(p.wf, dtype=None, finite=False) for p in chosen]),
                    "gt": _stats([read_tiff(p.gt, dtype=None, finite=False) for p in chosen]),
                }
            )
    return {
        "dataset": str(base),
        "structure": kind.name,
        "card": read_card(base),
        "splits": rows,
        "total_bytes": sum(r["bytes"] for r in rows),
    }


def _size(path: os.PathLike[str]) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _stats(images: list[np.ndarray]) -> dict[str, Any]:
    shapes = sorted({tuple(im.shape) for im in images})
    dtypes = sorted({str(im.dtype) for im in images})
    values = np.concatenate([im.ravel() for im in images]).astype(np.float64)
    finite = values[np.isfinite(values)]
    p1, p99 = np.percentile(finite, [1, 99]) if finite.size else (np.nan, np.nan)
    return {
        "shape": [list(s) for s in shapes],
        "dtype": dtypes,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "mean": float(finite.mean()) if finite.size else None,
        "std": float(finite.std()) if finite.size else None,
        "p1": float(p1),
        "p99": float(p99),
        "non_finite": int(values.size - finite.size),
    }


def format_info(info: dict[str, Any]) -> str:
    """Render :func:`dataset_info`'s result as a text table."""
    lines = [f"dataset: {info['dataset']} ({info.get('structure', layout.DEFAULT_STRUCTURE)})"]
    card = info.get("card") or {}
    if card:
        source = card.get("source") or card.get("generator") or "?"
        if isinstance(source, dict):  # a build's card: where the release was read from
            source = f"{source.get('path', '?')} ({source.get('kind', '?')})"
        lines.append(f"card: source {source}, gt_scale {card.get('gt_scale', '?')}")
    header = (
        f"{'split':<9} {'level':>5} {'photons':>7} {'pairs':>7} {'size':>9}  "
        f"{'wf shape':<9} {'wf min..max (mean)':<22} {'gt shape':<9} {'gt min..max (mean)':<22}"
    )
    lines += [header, "-" * len(header)]
    for r in info["splits"]:
        level = f"{r['level']:02d}" if r["level"] is not None else "-"
        photons = f"{r['photons']:.0f}" if r["photons"] is not None else "-"
        lines.append(
            f"{r['split']:<9} {level:>5} {photons:>7} {r['pairs']:>7,} {_human(r['bytes']):>9}  "
            f"{_shape(r['wf']):<9} {_range(r['wf']):<22} {_shape(r['gt']):<9} {_range(r['gt']):<22}"
        )
    lines.append("-" * len(header))
    dtypes = sorted({d for r in info["splits"] for k in ("wf", "gt") for d in r[k]["dtype"]})
    lines.append(
        f"total {_human(info['total_bytes'])} on disk; dtype {', '.join(dtypes) or '-'}; "
        "statistics from a sample; photons are nominal (geometric "
        f"{layout.PHOTON_RANGE[0]:g}..{layout.PHOTON_RANGE[1]:g} ladder)"
    )
    bad = sum(r[k]["non_finite"] for r in info["splits"] for k in ("wf", "gt"))
    if bad:
        lines.append(
            f"WARNING: {bad:,} NaN/inf values in the sampled images; "
            f"`biosr verify --deep {info['dataset']}` names the files"
        )
    return "\n".join(line.rstrip() for line in lines)


def _shape(stats: dict[str, Any]) -> str:
    return ",".join("x".join(map(str, s)) for s in stats["shape"])


def _range(stats: dict[str, Any]) -> str:
    bad = f"{stats['non_finite']:,} NaN/inf" if stats["non_finite"] else ""
    if stats["min"] is None:
        return f"no finite values ({bad})" if bad else "no finite values"
    text = f"{stats['min']:.3g}..{stats['max']:.3g} ({stats['mean']:.3g})"
    return f"{text} {bad}" if bad else text


def _human(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GB"
