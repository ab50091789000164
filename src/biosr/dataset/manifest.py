"""Provenance of a dataset copy: the per-file manifest (CSV with sha256) and the card (JSON).

The manifest has one row per image file. Its first columns are fixed
(:data:`COLUMNS`); producers add their own provenance columns after them (the
builder: cell, crop origin, angle, flip; the simulator: seed and cell), so the
format is one plain CSV that any tool can read. Paths are relative to the
``Microtubules`` folder, with forward slashes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from biosr import layout
from biosr.errors import DataError
from biosr.io.atomic import write_text

#: Columns every manifest starts with, in this order.
COLUMNS: tuple[str, ...] = ("path", "role", "split", "level", "index", "sha256")

_CHUNK = 1 << 20


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = f.write_bytes(b"abc")
    >>> sha256(f)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_row(
    dataset: str | os.PathLike[str], pair: layout.Pair, role: str, **provenance: Any
) -> dict[str, Any]:
    """A manifest row for the `role` (``"wf"`` or ``"gt"``) file of `pair`, hashing it.

    ``level`` is empty outside the test split and for a test target that
    serves every level of its index (one directly in ``test_gt/``); a test
    target in a level's own folder records its level.
    """
    path = pair.wf if role == "wf" else pair.gt
    shared_gt = Path(pair.gt).parent.name == layout.split_roots("test")[1]
    shared = pair.level is None or (role == "gt" and pair.split == "test" and shared_gt)
    return {
        "path": Path(path).relative_to(dataset).as_posix(),
        "role": role,
        "split": pair.split,
        "level": "" if shared else pair.level,
        "index": pair.index,
        "sha256": sha256(path),
        **provenance,
    }


def write_manifest(dataset: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write the manifest CSV into a ``Microtubules`` folder, atomically.

    Rows are sorted by path; extra columns (beyond :data:`COLUMNS`) are
    written in sorted order. Returns the manifest's path.
    """
    rows = sorted(rows, key=lambda r: r["path"])
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    target = Path(dataset) / layout.MANIFEST_FILE
    write_text(target, buf.getvalue())
    return target


def read_manifest(dataset: str | os.PathLike[str]) -> dict[str, dict[str, str]] | None:
    """Read a ``Microtubules`` folder's manifest as ``{path: row}``; None if there is none.

    Raises
    ------
    DataError
        If the file exists but lacks the required columns.
    """
    target = Path(dataset) / layout.MANIFEST_FILE
    if not target.is_file():
        return None
    with open(target, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(
                f"{target}: not a biosr manifest (missing {', '.join(sorted(missing))})"
            )
        return {row["path"]: row for row in reader}


def write_card(dataset: str | os.PathLike[str], card: Mapping[str, Any]) -> Path:
    """Write the dataset card (JSON) into a ``Microtubules`` folder, atomically."""
    target = Path(dataset) / layout.CARD_FILE
    write_text(target, json.dumps(card, indent=2, sort_keys=False, default=str) + "\n")
    return target


def read_card(dataset: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read the dataset card of a ``Microtubules`` folder; None if there is none."""
    target = Path(dataset) / layout.CARD_FILE
    if not target.is_file():
        return None
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{target}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def card_base(*, structure: str | layout.Structure | None = None, **fields: Any) -> dict[str, Any]:
    """The fields every dataset card starts with: format, biosr version, structure, licence, ...

    ``structure`` (default Microtubules) names the card's ``layout``
    (``BioSR/<structure>``) and its ``structure``, which
    :func:`biosr.layout.structure_of` reads. Producers add their own
    (``source``, ``seed``, ``protocol``, ``gt_scale``, pixel sizes ...) as
    keyword arguments.
    """
    from biosr import __version__
    from biosr.dataset.citation import BIBTEX, LICENCE

    chosen = layout.get_structure(structure)
    return {
        "format": "biosr-dataset-card/1",
        "biosr_version": __version__,
        "layout": chosen.dataset_dir.as_posix(),
        "structure": chosen.name,
        "patch_size": layout.PATCH_SIZE,
        "dtype": str(layout.DTYPE),
        **fields,
        "licence": LICENCE,
        "citation": BIBTEX,
    }
