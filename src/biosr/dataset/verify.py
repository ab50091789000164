"""Check a copy of the dataset against the layout (and its manifest); return findings.

Three depths of checking, each a superset of the one before:

1. every file (always): folder layout, file names, pairing of inputs and
   targets at every level, counts, each file's size (zero-byte and truncated
   files) and its first bytes (a non-TIFF named ``.tif``);
2. a seeded sample per folder (default): decoded and checked for shape,
   dtype and finite values;
3. ``deep=True``: every file decoded and checked, and its sha256 compared with
   the manifest when one is present.

The structure checked against (its levels, its counts) is the one the
dataset card names (:func:`biosr.layout.structure_of`; Microtubules without a
card). Nothing here prints; :func:`format_report` renders a :class:`Report`.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from biosr import layout
from biosr._checks import check_non_negative_int, check_seed, check_workers
from biosr._progress import bar
from biosr.dataset.manifest import read_card, read_manifest
from biosr.errors import DataError
from biosr.io.atomic import is_part, stale_parts
from biosr.io.tiff import decode_tiff, is_tiff_header, tifffile_warnings

#: What :func:`verify` can expect of the counts: ``consistent`` (any, default) or ``published``.
EXPECTATIONS: tuple[str, ...] = ("consistent", "published")


@dataclass(frozen=True)
class Finding:
    """One problem: the file or folder concerned and why it is wrong."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class CountRow:
    """Pairs found for one split (and test level), against what is expected."""

    split: str
    level: int | None
    inputs: int
    targets: int
    expected: int | None
    problems: int = 0


@dataclass
class Report:
    """What :func:`verify` found.

    Attributes
    ----------
    dataset : Path
        The ``BioSR/<Structure>`` folder checked.
    structure : str
        The structure checked against (the card's; see :func:`biosr.layout.structure_of`).
    findings : list of Finding
        Every problem found, in a stable order; empty for a good copy.
    rows : list of CountRow
        Counts per split and level, for the summary table.
    files : int
        Image files seen.
    decoded : int
        Image files read and decoded.
    hashed : int
        Image files whose sha256 was checked against the manifest.
    gt_scale : int
        GT side over WF side used for the shape check (from the card, else inferred).
    patch_size : int
        WF side used for the shape check: the card's ``patch_size`` when there
        is one, else :data:`biosr.layout.PATCH_SIZE` (always that with
        ``expect="published"``).
    """

    dataset: Path
    structure: str = layout.DEFAULT_STRUCTURE
    findings: list[Finding] = field(default_factory=list)
    rows: list[CountRow] = field(default_factory=list)
    files: int = 0
    decoded: int = 0
    hashed: int = 0
    gt_scale: int = 1
    patch_size: int = layout.PATCH_SIZE

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.findings


def verify(
    root: str | os.PathLike[str],
    *,
    expect: str = "consistent",
    splits: Sequence[str] | None = None,
    deep: bool = False,
    sample: int = 32,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
    structure: str | layout.Structure | None = None,
) -> Report:
    """Check a dataset copy and report every problem found.

    Parameters
    ----------
    root : path-like
        The folder containing ``BioSR/``, or a dataset folder (``Microtubules`` ...).
    expect : {'consistent', 'published'}, optional
        ``'published'`` demands the full DL-SR counts of the structure
        (:attr:`biosr.layout.Structure.counts`; for Microtubules the
        published :data:`biosr.layout.PUBLISHED_COUNTS`); ``'consistent'``
        (default) accepts any count as long as every test level has the same
        pairs.
        Patches must be as large as the dataset card says (``patch_size``;
        :data:`biosr.layout.PATCH_SIZE` without a card), or exactly that
        with ``'published'``.
    splits : sequence of str, optional
        Splits that must be present (default: all three). Others present are
        still checked; absent ones are not an error.
    deep : bool, optional
        Decode every file, and check every sha256 against the manifest if the
        copy has one.
    sample : int, optional
        Without `deep`, files decoded per folder (default 32).
    seed : int, optional
        Seed of the sample.
    workers : int, optional
        Threads reading files (default: up to 8).
    progress : bool, optional
        Show a progress bar while decoding.
    structure : str or Structure, optional
        Which ``ROOT/BioSR/<structure>`` to check (default: Microtubules, or
        the only structure there). The checks follow the card's structure; a
        card naming another one is a finding.

    Returns
    -------
    Report

    Raises
    ------
    DataError
        If `root` holds no dataset at all, the manifest or card is unreadable,
        or `expect` or a split is unknown.
    """
    if expect not in EXPECTATIONS:
        raise DataError(f"expect must be one of {', '.join(EXPECTATIONS)}, not {expect!r}")
    sample, seed = check_non_negative_int(sample, "sample"), check_seed(seed)
    workers = check_workers(workers)
    asked = None if structure is None else layout.get_structure(structure, error=DataError)
    try:
        base = layout.dataset_dir(root, structure=asked)
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from None
    required = tuple(layout.check_split(s, error=DataError) for s in (splits or layout.SPLITS))
    card = read_card(base) or {}
    manifest = read_manifest(base) if deep else None
    chosen = layout.structure_of(base)
    report = Report(dataset=base, structure=chosen.name)
    if asked is not None and asked is not chosen:
        report.findings.append(
            Finding(
                str(base / layout.CARD_FILE),
                f"the dataset is {chosen.name} (its card), not {asked.name}; checked as "
                f"{chosen.name}",
            )
        )
    checks: list[tuple[Path, str, bool]] = []  # (file, role, odd size) to decode

    _check_top_level(base, report)
    for part in stale_parts(base / layout.PACK_DIR):
        report.findings.append(
            Finding(str(part), "leftover of an interrupted pack; the next `biosr pack` removes it")
        )
    checked = []
    for split in layout.SPLITS:
        present = any((base / d).exists() for d in layout.split_roots(split))
        if split not in required and not present:
            continue
        checked.append(split)
        checks.extend(_check_split(base, split, expect, report, chosen))

    if expect != "published":
        report.patch_size = int(card.get("patch_size") or layout.PATCH_SIZE)
    report.gt_scale = int(card.get("gt_scale") or _infer_gt_scale(checks, report.patch_size))
    if report.gt_scale not in (1, chosen.gt_scale):
        where = (
            base / layout.CARD_FILE
            if card.get("gt_scale")
            else base / layout.split_roots("test")[1]
        )
        report.findings.append(
            Finding(
                str(where),
                f"GT {report.gt_scale}x the WF side; {chosen.name} has GT 1x (binned) "
                f"or {chosen.gt_scale}x",
            )
        )
    rng = np.random.default_rng(seed)
    to_read = checks if deep else _sample(checks, sample, rng)
    _decode_all(to_read, base, report, manifest, workers, progress)
    if manifest is not None:
        _check_manifest_coverage(base, manifest, checks, checked, report)
    report.findings.sort(key=lambda f: (f.path, f.reason))
    return report


# --------------------------------------------------------------------------- #
# Layout, names, pairing, counts
# --------------------------------------------------------------------------- #


def _check_top_level(base: Path, report: Report) -> None:
    known = {d for s in layout.SPLITS for d in layout.split_roots(s)}
    known |= {layout.MANIFEST_FILE, layout.CARD_FILE}
    for entry in sorted(os.scandir(base), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name in known:
            continue
        report.findings.append(Finding(entry.path, "unexpected entry in the dataset folder"))


def _scan(folder: Path, split: str, report: Report) -> dict[int, os.DirEntry] | None:
    """Image files of a folder by index; names, subfolders and sizes checked. None if missing."""
    if not folder.is_dir():
        report.findings.append(Finding(str(folder), "missing folder"))
        return None
    found: dict[int, os.DirEntry] = {}
    for entry in os.scandir(folder):
        if is_part(entry.name):
            report.findings.append(
                Finding(entry.path, "leftover temporary file of an interrupted write; delete it")
            )
            continue
        if entry.name.startswith("."):
            continue
        index = layout.parse_file_name(split, entry.name) if entry.is_file() else None
        if index is None:
            digits = layout.NAME_DIGITS[split]
            what = "folder" if entry.is_dir() else "file name"
            report.findings.append(
                Finding(entry.path, f"unexpected {what} (expected {'N' * digits}{layout.SUFFIX})")
            )
            continue
        found[index] = entry
    return found


def _check_split(
    base: Path, split: str, expect: str, report: Report, structure: layout.Structure
) -> list[tuple[Path, str, bool]]:
    wf_root, gt_root = layout.split_roots(split)
    levels: list[tuple[int | None, Path, Path]] = []
    if split == "test":
        levels = [
            (lev, *(base / d for d in layout.split_dirs(split, lev, structure=structure)))
            for lev in structure.levels
        ]
        for root, per_level in ((wf_root, True), (gt_root, _per_level_gt(levels))):
            if per_level and (base / root).is_dir():
                _check_level_dirs(base / root, structure, report)
    else:
        levels = [(None, *(base / d for d in layout.split_dirs(split, structure=structure)))]
    expected = _expected_count(structure, split) if expect == "published" else None

    checks: list[tuple[Path, str, bool]] = []
    targets: dict[Path, set[int] | None] = {}
    for gt_dir in dict.fromkeys(gt_dir for _, _, gt_dir in levels):
        gt = _scan(gt_dir, split, report)
        targets[gt_dir] = None if gt is None else set(gt)
        if gt is not None:
            report.files += len(gt)
            checks.extend(
                (Path(e.path), "gt", odd) for e, odd in _size_checked(gt.values(), report)
            )
    for level, wf_dir, gt_dir in levels:
        wf = _scan(wf_dir, split, report)
        wf_set = set(wf or {})
        gt_set = targets[gt_dir] or set()
        if wf is not None:
            report.files += len(wf)
            checks.extend(
                (Path(e.path), "wf", odd) for e, odd in _size_checked(wf.values(), report)
            )
        if wf is not None and targets[gt_dir] is not None:
            _check_pairing(base, split, level, wf_set, gt_set, report, structure)
        _check_gaps(base, split, level, wf_set | gt_set, report, structure)
        n = len(wf_set)
        row = CountRow(split, level, n, len(gt_set), expected)
        if wf is not None:
            _check_count(wf_dir, split, n, expected, report, row, structure)
        report.rows.append(row)
        if (
            split == "test"
            and expect == "consistent"
            and targets[gt_dir] is not None
            and wf_dir.is_dir()
            and n != len(gt_set)
        ):
            report.findings.append(
                Finding(
                    str(wf_dir),
                    f"{n} inputs but {gt_dir.relative_to(base).as_posix()} has {len(gt_set)} "
                    f"targets (level {level:02d} is inconsistent)",
                )
            )
    for gt_dir, gt_set in targets.items():
        if gt_set is not None and expected is not None and len(gt_set) != expected:
            report.findings.append(
                Finding(
                    str(gt_dir),
                    f"{len(gt_set):,} targets, expected {expected:,} ({_expected_what(structure)})",
                )
            )
    return checks


def _per_level_gt(levels: list[tuple[int | None, Path, Path]]) -> bool:
    """True if the layout gives each test level its own target folder."""
    return len({gt_dir for _, _, gt_dir in levels}) == len(levels) > 1


def _check_level_dirs(folder: Path, structure: layout.Structure, report: Report) -> None:
    """Every entry of a test root must be one of the structure's ``level_XX`` folders."""
    first = layout.level_dir(structure.levels[0], structure=structure)
    last = layout.level_dir(structure.levels[-1], structure=structure)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if layout.parse_level_dir(entry.name, structure=structure) is None or not entry.is_dir():
            report.findings.append(
                Finding(entry.path, f"unexpected entry (expected {first} .. {last})")
            )


def _expected_count(structure: layout.Structure, split: str) -> int:
    """Pairs of `split` (test: per level) in the structure's full DL-SR dataset."""
    return structure.counts[split]


def _expected_what(structure: layout.Structure) -> str:
    """What an expected count is called: the published copy's, or the protocol's."""
    return "published" if structure.published else f"the DL-SR protocol for {structure.name}"


def _check_pairing(
    base: Path,
    split: str,
    level: int | None,
    wf: set[int],
    gt: set[int],
    report: Report,
    structure: layout.Structure,
) -> None:
    for index in sorted(wf - gt):
        p = layout.pair(base, split, index, level, structure=structure)
        report.findings.append(Finding(str(p.wf), f"no matching target {p.gt}"))
    for index in sorted(gt - wf):
        p = layout.pair(base, split, index, level, structure=structure)
        report.findings.append(Finding(str(p.gt), f"no matching input {p.wf}"))


def _check_count(
    folder: Path,
    split: str,
    n: int,
    expected: int | None,
    report: Report,
    row: CountRow,
    structure: layout.Structure,
) -> None:
    if n == 0:
        report.findings.append(Finding(str(folder), "no images"))
        row.problems += 1
    elif expected is not None and n != expected:
        report.findings.append(
            Finding(
                str(folder), f"{n:,} inputs, expected {expected:,} ({_expected_what(structure)})"
            )
        )
        row.problems += 1


def _check_gaps(
    base: Path,
    split: str,
    level: int | None,
    indices: set[int],
    report: Report,
    structure: layout.Structure,
) -> None:
    """Indices must run 1..n: name every index missing from both inputs and targets."""
    if not indices:
        return
    for index in sorted(set(range(1, max(indices) + 1)) - indices):
        p = layout.pair(base, split, index, level, structure=structure)
        report.findings.append(
            Finding(
                str(p.wf), "missing (input and target absent; indices must run from 1 without gaps)"
            )
        )


def _size_checked(entries: Iterable[os.DirEntry], report: Report) -> list[tuple[os.DirEntry, bool]]:
    """Entries that start like a TIFF, each with a flag: its size is odd for its folder.

    Images of one folder have one shape and dtype, so (uncompressed) one file
    size. A file of another size (truncated, wrong shape or dtype) is flagged
    so that it is decoded whatever the sample, and the decoder names the reason.
    """
    sized = []
    for entry in entries:
        size = entry.stat().st_size
        if size == 0:
            report.findings.append(Finding(entry.path, "empty file (0 bytes)"))
            continue
        try:
            with open(entry.path, "rb") as fh:
                head = fh.read(4)
        except OSError as exc:
            report.findings.append(Finding(entry.path, f"unreadable ({exc.strerror})"))
            continue
        if not is_tiff_header(head):
            report.findings.append(Finding(entry.path, "not a TIFF file (bad header)"))
            continue
        sized.append((entry, size))
    common = Counter(size for _, size in sized).most_common(1)
    usual = common[0][0] if common else 0
    return [(entry, size != usual) for entry, size in sized]


# --------------------------------------------------------------------------- #
# Decoding, checksums
# --------------------------------------------------------------------------- #


def _infer_gt_scale(checks: list[tuple[Path, str, bool]], patch_size: int) -> int:
    """GT side over `patch_size`, from the first few targets' TIFF headers (no pixel decoding)."""
    votes: Counter[int] = Counter()
    for path, role, odd in checks:
        if role != "gt" or odd:
            continue
        try:
            with tifffile_warnings(), tifffile.TiffFile(path) as tif:
                side = tif.pages[0].shape[0]
        except Exception:  # a broken file is reported when decoded
            continue
        votes[max(1, side // patch_size)] += 1
        if sum(votes.values()) >= 5:
            break
    return votes.most_common(1)[0][0] if votes else 1


def _sample(checks: list[tuple[Path, str, bool]], n: int, rng: np.random.Generator) -> list:
    """Every odd-sized file, and up to `n` others per folder chosen with `rng`, in order."""
    by_folder: dict[Path, list[tuple[Path, str, bool]]] = {}
    chosen = [item for item in checks if item[2]]
    for item in sorted(item for item in checks if not item[2]):
        by_folder.setdefault(item[0].parent, []).append(item)
    for folder in sorted(by_folder):
        items = by_folder[folder]
        if len(items) > n:
            picks = rng.choice(len(items), size=n, replace=False)
            items = [items[i] for i in sorted(picks)]
        chosen.extend(items)
    return chosen


def _decode_all(
    items: list[tuple[Path, str, bool]],
    base: Path,
    report: Report,
    manifest: dict[str, dict[str, str]] | None,
    workers: int | None,
    progress: bool,
) -> None:
    side = report.patch_size
    shapes = {"wf": (side, side), "gt": (side * report.gt_scale, side * report.gt_scale)}

    def check(item: tuple[Path, str, bool]) -> tuple[list[Finding], bool]:
        path, role, _ = item
        try:
            data = path.read_bytes()
        except OSError as exc:
            return [Finding(str(path), f"unreadable ({exc.strerror})")], False
        found = []
        try:  # every page, not only the first: a stack in place of a patch is a finding
            decode_tiff(data, path, shape=shapes[role], dtype=layout.DTYPE)
        except DataError as exc:
            found.append(Finding(str(path), str(exc).removeprefix(f"{path}: ")))
        except Exception as exc:  # any decoder failure is a finding
            found.append(Finding(str(path), f"unreadable or truncated TIFF ({exc})"))
        hashed = False
        if manifest is not None:
            row = manifest.get(path.relative_to(base).as_posix())
            if row is not None:
                hashed = True
                if hashlib.sha256(data).hexdigest() != row["sha256"]:
                    found.append(Finding(str(path), "sha256 differs from the manifest"))
        return found, hashed

    n_workers = workers or min(8, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        results = pool.map(check, items)
        for found, hashed in bar(
            results, enabled=progress, total=len(items), desc="verify", unit="file"
        ):
            report.findings.extend(found)
            report.decoded += 1
            report.hashed += hashed


def _check_manifest_coverage(
    base: Path,
    manifest: dict[str, dict[str, str]],
    checks: list[tuple[Path, str, bool]],
    splits: Sequence[str],
    report: Report,
) -> None:
    """Files of the checked splits: on disk but not listed, listed but not on disk."""
    on_disk = {p.relative_to(base).as_posix() for p, _, _ in checks}
    listed = {path for path, row in manifest.items() if row["split"] in splits}
    for rel in sorted(listed - on_disk):
        if not (base / rel).exists():
            report.findings.append(Finding(str(base / rel), "listed in the manifest but missing"))
    for rel in sorted(on_disk - listed):
        report.findings.append(Finding(str(base / rel), "not listed in the manifest"))


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #


def format_report(report: Report, *, table: bool = True) -> str:
    """Render a report: one ``path: reason`` line per finding, then a summary table."""
    lines = [str(f) for f in report.findings]
    if table:
        if lines:
            lines.append("")
        lines.append(f"dataset: {report.dataset} ({report.structure})")
        header = f"{'split':<10} {'level':>5} {'inputs':>8} {'targets':>8} {'expected':>9}"
        lines += [header, "-" * len(header)]
        for row in report.rows:
            level = f"{row.level:02d}" if row.level is not None else "-"
            expected = f"{row.expected:,}" if row.expected is not None else "any"
            lines.append(
                f"{row.split:<10} {level:>5} {row.inputs:>8,} {row.targets:>8,} {expected:>9}"
            )
        lines.append("-" * len(header))
        lines.append(
            f"{report.files:,} files seen, {report.decoded:,} decoded, {report.hashed:,} checksums "
            f"checked; GT {report.gt_scale}x WF"
        )
    verdict = "OK" if report.ok else f"FAILED: {len(report.findings):,} problem(s)"
    lines.append(verdict)
    return "\n".join(lines)
