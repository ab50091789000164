"""The original BioSR release as builder input: find it, check every cell's files, read a cell.

A source is an extracted release (a folder of ``Cell_XXX`` folders, or its
parent holding ``<Structure>/``) or ``<Structure>.zip`` itself, of one of the
structures of :data:`biosr.layout.STRUCTURES` (Microtubules by default).
Opening it checks, before anything is written anywhere, that the cells have
the structure's folder shape (a release of another structure is named as
such: ER keeps ``RawSIMData/`` and ``GTSIM/``, F-actin has 12 levels,
nonlinear SIM ``SIM_gt_a.mrc``), that every needed file exists and that its
MRC header agrees with its size, mode and shape (raw levels: mode 6, the
structure's frames, 9 or 25; SIM GT: mode 2, exactly the structure's GT
scale times the raw size, 2x or 3x). What the table holds as uncertain
(:attr:`biosr.layout.Structure.uncertain`: pixel sizes, cell count, file
names) is compared with the headers and folders read, in
:attr:`Source.checked`. A zip
is read with :mod:`zipfile` member by member: any member name that could
land outside a folder (absolute, ``..``, drive letter, backslash, symlink)
rejects the whole archive, every needed member is read through once so that
its CRC-32 is checked before anything is written (a corrupt member in the
last cell stops the build before the first cell is cut), and a cell's
members are copied to names this module makes up, never to the names the
archive gives. The source itself is
never modified. The header check (:func:`biosr.io.mrc.check_header`) works
on bytes, so it serves folder files and zip members alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import numpy as np

from biosr import layout
from biosr.errors import DataError
from biosr.io.mrc import HEADER_BYTES, check_header, read_mrc, voxel_size_nm

#: Key of a cell's SIM GT (one per cell; ``sim_gt_XX`` per level, see :func:`needed_keys`).
GT_KEY = "sim_gt"

#: Header voxel sizes closer than this (nm) to the table's value agree with it.
PIXEL_TOLERANCE_NM = 0.05

_Entry = dict[str, tuple[str, tuple[int, ...]]]


def level_key(level: int) -> str:
    """Key of a level's raw stack in :func:`biosr.layout.release_files` (``level_01``)."""
    return f"level_{level:02d}"


def gt_key(structure: str | layout.Structure | None, level: int) -> str:
    """Key of the SIM GT that `level`'s patches are cut against (``sim_gt``; ER: ``sim_gt_01``)."""
    chosen = layout.get_structure(structure)
    return f"{GT_KEY}_{level:02d}" if chosen.gt_per_level else GT_KEY


def needed_keys(structure: str | layout.Structure | None = None) -> tuple[str, ...]:
    """Keys of the files of a cell the builder reads: each level's stack, then the SIM GT(s)."""
    chosen = layout.get_structure(structure)
    gts = dict.fromkeys(gt_key(chosen, lv) for lv in chosen.levels)
    return (*(level_key(lv) for lv in chosen.levels), *gts)


class Source(NamedTuple):
    """An opened, checked release.

    Attributes
    ----------
    path : Path
        The folder holding ``Cell_XXX`` folders, or the zip file.
    zip_prefix : str or None
        For a zip: the member prefix of the cell folders (``""`` or
        ``"Microtubules/"``); None for a folder.
    cells : dict
        ``{cell: {key: (name, (mode, nz, ny, nx))}}`` for the checked cells;
        ``name`` is relative to the release (``Cell_001/SIM_gt.mrc``), keys
        those of :func:`needed_keys`.
    fingerprint : str
        sha256 over the checked files' names, sizes and headers: what a
        resumed build compares (not the location, which may move).
    structure : str
        The structure the release was checked as.
    checked : dict or None
        What the files say about the table's facts, ``{fact: {"table":
        value, "found": value, "agrees": bool or None}}`` (see
        :func:`describe_checks`).
    """

    path: Path
    zip_prefix: str | None
    cells: dict[int, _Entry]
    fingerprint: str
    structure: str = layout.DEFAULT_STRUCTURE
    checked: dict[str, dict[str, Any]] | None = None


def open_source(
    source: str | os.PathLike[str],
    cells: tuple[int, ...],
    *,
    structure: str | layout.Structure | None = None,
) -> Source:
    """Find the release at `source` and check the files of `cells`.

    Parameters
    ----------
    source : path-like
        A folder holding ``Cell_XXX`` folders, its parent holding
        ``<Structure>/`` (or ``<Structure>.zip``), or the zip itself.
    cells : tuple of int
        Cells the build will read.
    structure : str or Structure, optional
        The structure the release is of (default Microtubules).

    Returns
    -------
    Source

    Raises
    ------
    DataError
        One line naming the file: a release of another structure, missing
        cell, folder or file, truncated MRC, unexpected mode, frames or
        shape, WF:GT not 1:scale, unsafe zip member.
    """
    chosen = layout.get_structure(structure, error=DataError)
    path = Path(source)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not a zip archive nor a release folder")
        return _open_zip(path, cells, chosen)
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    folder = _release_folder(path, chosen)
    if folder is None:
        archive = path / chosen.archive
        if archive.is_file():
            return _open_zip(archive, cells, chosen)
        others = [
            f"{s.name}/" if (path / s.name).is_dir() else s.archive
            for s in layout.STRUCTURES.values()
            if s is not chosen and ((path / s.name).is_dir() or (path / s.archive).is_file())
        ]
        if others:
            raise DataError(
                f"{path}: holds {' and '.join(others)} but no {chosen.name}/ or "
                f"{chosen.archive}; {_structure_advice(others[0].rstrip('/').removesuffix('.zip'))}"
            )
        raise DataError(
            f"{path}: no BioSR release here (expected Cell_XXX folders, "
            f"{chosen.name}/ or {chosen.archive})"
        )
    checked: dict[int, _Entry] = {}
    voxels: dict[str, list[float]] = {"raw": [], "gt": []}
    listings: dict[int, set[str]] = {}
    digest = hashlib.sha256()
    for cell in cells:
        cell_dir = layout.release_cell_dir(folder, cell)
        if not cell_dir.is_dir():
            raise DataError(
                f"{cell_dir}: cell {cell} not found in the release "
                f"({_count_cells(folder)} Cell_XXX folders)"
            )
        listings[cell] = _listing(cell_dir)
        _check_layout(chosen, listings[cell], cell_dir, folder.name)
        files = layout.release_files(folder, cell, structure=chosen)
        entry = {}
        for key in needed_keys(chosen):
            file = files[key]
            try:
                size = file.stat().st_size
                with open(file, "rb") as fh:
                    head = fh.read(HEADER_BYTES)
            except FileNotFoundError:
                if not file.parent.is_dir():
                    raise DataError(
                        f"{file.parent}: folder not found (cell {cell}; {chosen.name} keeps "
                        f"{file.relative_to(cell_dir).as_posix()} there)"
                    ) from None
                raise DataError(f"{file}: file not found (cell {cell})") from None
            except OSError as exc:
                raise DataError(f"{file}: unreadable ({exc.strerror})") from None
            name = file.relative_to(folder).as_posix()
            entry[key] = (name, _check_header(head, size, str(file), voxels, key))
            digest.update(f"{name}:{size}:".encode() + head)
        _check_cell(entry, cell_dir, chosen)
        checked[cell] = entry
    facts = _facts(chosen, _count_cells(folder), listings, voxels, checked)
    return Source(folder, None, checked, digest.hexdigest(), chosen.name, facts)


def _release_folder(path: Path, structure: layout.Structure) -> Path | None:
    for candidate in (path, path / structure.name):
        if candidate.is_dir() and any(
            layout.parse_cell_dir(e.name) is not None and e.is_dir() for e in os.scandir(candidate)
        ):
            return candidate
    return None


def _count_cells(folder: Path) -> int:
    return sum(
        1 for e in os.scandir(folder) if layout.parse_cell_dir(e.name) is not None and e.is_dir()
    )


def _listing(cell_dir: Path) -> set[str]:
    """Files of a cell folder, relative and ``/``-separated, at most two folders deep."""
    out = set()
    for root, dirs, files in os.walk(cell_dir):
        rel = Path(root).relative_to(cell_dir)
        if len(rel.parts) >= 2:
            dirs[:] = []
        out.update((rel / f).as_posix() for f in files)
    return out


def _needed_names(structure: layout.Structure) -> tuple[str, ...]:
    """Names, relative to a cell folder, of the files the builder reads."""
    files = layout.release_files("", 1, structure=structure)
    return tuple(
        files[k].relative_to(layout.CELL_DIR.format(cell=1)).as_posix()
        for k in needed_keys(structure)
    )


def _extra_level(structure: layout.Structure, names: set[str]) -> str | None:
    """The first level file beyond the structure's levels present in a cell listing, if any."""
    extra = structure.level_file.format(level=structure.n_levels + 1)
    return extra if extra in names else None


def _matches(structure: layout.Structure, names: set[str]) -> bool:
    """True if a cell's files have the structure's folder shape (needed files, no extra level)."""
    return all(n in names for n in _needed_names(structure)) and not _extra_level(structure, names)


def _structure_advice(name: str) -> str:
    return f"build it as that structure (--structure {name}, structure={name!r})"


def _check_layout(
    chosen: layout.Structure, names: set[str], where: Path | str, release_name: str
) -> None:
    """Raise DataError if a cell's files have another structure's folder shape, not `chosen`'s.

    Cells that match no structure are left to the per-file checks (which name
    the missing file). Two structures with one shape (CCPs, Microtubules) are
    told apart by the release's name, when it is a structure's.
    """
    if _matches(chosen, names):
        named = layout.STRUCTURES.get(release_name)
        if named is not None and named is not chosen and _matches(named, names):
            raise DataError(
                f"{where}: the release is named {release_name}, not {chosen.name}, and its "
                f"files fit both; {_structure_advice(named.name)}, or rename it"
            )
        return
    others = [s for s in layout.STRUCTURES.values() if s is not chosen and _matches(s, names)]
    if not others:
        return
    mine = _needed_names(chosen)
    missing = next((n for n in mine if n not in names), None)
    extra = _extra_level(chosen, names)
    distinct = next((n for n in _needed_names(others[0]) if n not in mine), None)
    if extra is not None:
        why = f"it has {extra}, and {chosen.name} has {chosen.n_levels} levels"
    elif distinct is not None:
        why = f"it has {distinct}, not {missing}"
    else:
        why = f"it has no {missing}; {chosen.name} has {chosen.n_levels} levels"
    looks = " or ".join(s.name for s in others)
    named = next((s for s in others if s.name == release_name), others[0])
    raise DataError(
        f"{where}: looks like a release of {looks}, not {chosen.name} ({why}); "
        f"{_structure_advice(named.name)}"
    )


def _check_header(
    head: bytes, size: int, label: str, voxels: dict[str, list[float]], key: str
) -> tuple[int, ...]:
    """Check an MRC header's shape x mode against the file size; return ``(mode, nz, ny, nx)``.

    The header's voxel size is appended to ``voxels["raw"]`` or ``voxels["gt"]``.
    """
    header = check_header(head, size, label)
    voxels["gt" if key.startswith(GT_KEY) else "raw"].append(voxel_size_nm(header))
    return (int(header.mode), int(header.nz), int(header.ny), int(header.nx))


def _check_cell(entry: _Entry, where: Path | str, structure: layout.Structure) -> None:
    """Check modes and shapes of one cell's headers (raw: mode 6, the structure's frames;
    GT: mode 2, one section, the structure's GT scale times the raw size)."""
    raw_shape = None
    frames, scale = structure.frames, structure.gt_scale
    for key in (level_key(lv) for lv in structure.levels):
        name, (mode, nz, ny, nx) = entry[key]
        label = _label(where, name)
        if mode != 6:
            raise DataError(f"{label}: unexpected MRC mode {mode} for raw SIM frames (expected 6)")
        if nz != frames:
            like = [s.name for s in layout.STRUCTURES.values() if s.frames == nz]
            hint = f"; {nz} frames is a {' or '.join(like)} stack" if like else ""
            raise DataError(
                f"{label}: {nz} frames, expected {frames} ({structure.name}: "
                f"{structure.orientations} orientations x {structure.phases} phases){hint}"
            )
        if raw_shape is None:
            raw_shape = (ny, nx)
        elif (ny, nx) != raw_shape:
            raise DataError(f"{label}: frames {ny}x{nx}, other levels of the cell {raw_shape}")
    assert raw_shape is not None
    for key in dict.fromkeys(gt_key(structure, lv) for lv in structure.levels):
        name, (mode, nz, ny, nx) = entry[key]
        label = _label(where, name)
        if mode != 2:
            raise DataError(f"{label}: unexpected MRC mode {mode} for the SIM GT (expected 2)")
        if nz != 1:
            raise DataError(f"{label}: {nz} sections, expected one SIM GT image")
        if (ny, nx) != (scale * raw_shape[0], scale * raw_shape[1]):
            raise DataError(
                f"{label}: GT {ny}x{nx} and raw {raw_shape[0]}x{raw_shape[1]} are not in a "
                f"1:{scale} ratio ({structure.name}'s SIM GT has {scale}x the raw sampling)"
            )


def _label(where: Path | str, name: str) -> str:
    """How a header message names a cell's file: ``<where>/<name inside the cell>``."""
    inside = PurePosixPath(name).parts[1:]  # name is Cell_XXX/...
    return f"{where}/{PurePosixPath(*inside).as_posix()}"


def _facts(
    structure: layout.Structure,
    release_cells: int,
    listings: dict[int, set[str]],
    voxels: dict[str, list[float]],
    entries: dict[int, _Entry],
) -> dict[str, dict[str, Any]]:
    """What the headers and folders read say of the table's facts (:attr:`Source.checked`)."""

    def sizes(table: float, found: list[float]) -> dict[str, Any]:
        values = sorted(set(found))
        agrees = bool(values) and all(abs(v - table) <= PIXEL_TOLERANCE_NM for v in values)
        return {"table": table, "found": values, "files": len(found), "agrees": agrees}

    raw_gt = [
        cell
        for cell, names in listings.items()
        if all(
            f.relative_to(layout.CELL_DIR.format(cell=1)).as_posix() in names
            for k, f in layout.release_files("", 1, structure=structure).items()
            if k.startswith("raw_gt")
        )
    ]
    levels = [
        max(
            (lv for lv in range(1, 100) if structure.level_file.format(level=lv) in names),
            default=0,
        )
        for names in listings.values()
    ]
    shapes = sorted({e[level_key(1)][1][2:] for e in entries.values()})
    n = len(listings)
    return {
        "pixel_size_wf_nm": sizes(structure.pixel_size_wf_nm, voxels["raw"]),
        "pixel_size_gt_nm": sizes(structure.pixel_size_gt_nm, voxels["gt"]),
        "release_cells": {
            "table": structure.release_cells,
            "found": release_cells,
            "agrees": release_cells == structure.release_cells,
        },
        "levels": {
            "table": structure.n_levels,
            "found": sorted(set(levels)),
            "agrees": set(levels) <= {structure.n_levels},
        },
        "frames": {"table": structure.frames, "found": structure.frames, "agrees": True},
        "gt_scale": {"table": structure.gt_scale, "found": structure.gt_scale, "agrees": True},
        "raw_size": {
            "table": structure.raw_size,
            "found": [list(s) for s in shapes],
            "agrees": shapes == [(structure.raw_size, structure.raw_size)],
        },
        "level_file": {
            "table": structure.level_file,
            "found": f"in {n} of {n} cells",
            "agrees": True,
        },
        "sim_gt_file": {
            "table": structure.sim_gt_file,
            "found": f"in {n} of {n} cells",
            "agrees": True,
        },
        "raw_gt_file": {
            "table": structure.raw_gt_file,
            "found": f"in {len(raw_gt)} of {n} cells",
            "agrees": len(raw_gt) == n,
        },
        "line_spacing_nm": {
            "table": structure.line_spacing_nm,
            "found": None,
            "agrees": None,
        },
    }


def describe_checks(
    structure: str | layout.Structure | None, checked: dict[str, dict[str, Any]] | None
) -> list[str]:
    """One line per uncertain fact of `structure` and per fact the files contradict.

    Parameters
    ----------
    structure : str or Structure
        The structure built.
    checked : dict or None
        :attr:`Source.checked` (as the dataset card records it under ``"checked"``).

    Returns
    -------
    list of str
        E.g. ``"pixel_size_wf_nm (uncertain): table 60.4, MRC headers 60.4 (18 files):
        agrees"``; empty when there is nothing to say.
    """
    chosen = layout.get_structure(structure)
    lines = []
    for fact, value in (checked or {}).items():
        uncertain = fact in chosen.uncertain
        differs = value.get("agrees") is False and fact in _REPORTED
        if not (uncertain or differs):
            continue
        found = value.get("found")
        if fact.startswith("pixel_size"):
            shown = ", ".join(f"{v:g}" for v in found) or "none"
            where = f"MRC headers {shown} ({value.get('files', 0)} files)"
        elif fact == "release_cells":
            where = f"{found} Cell_XXX folders"
        elif found is None:
            where = "not in the files a build reads (SIM reconstruction uses it)"
        else:
            where = f"found {found}"
        verdict = {True: "agrees", None: "unchecked"}.get(
            value.get("agrees"), f"DIFFERS{_REPORTED.get(fact, '')}"
        )
        tag = " (uncertain)" if uncertain else ""
        lines.append(f"{fact}{tag}: table {value.get('table')}, {where}: {verdict}")
    return lines


#: Facts reported whenever the files contradict them (uncertain or not), and what it means.
_REPORTED = {
    "pixel_size_wf_nm": "; the TIFFs and the card keep the table's value",
    "pixel_size_gt_nm": "; the TIFFs and the card keep the table's value",
    "levels": "; only the table's levels are cut",
}


def _safe_member(name: str) -> bool:
    if not name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return False
    return ".." not in PurePosixPath(name).parts


def _cell_prefix(name: str) -> str | None:
    """Member prefix of the ``Cell_XXX`` folder a member lies in (``"ER/"``), None if none."""
    parts = PurePosixPath(name).parts
    for i in range(len(parts) - 2, -1, -1):
        if layout.parse_cell_dir(parts[i]) is not None:
            return "".join(f"{p}/" for p in parts[:i])
    return None


def _open_zip(archive: Path, cells: tuple[int, ...], structure: layout.Structure) -> Source:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive}: unreadable zip ({exc})") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            is_link = stat.S_ISLNK(info.external_attr >> 16)
            if is_link or not _safe_member(info.filename):
                raise DataError(
                    f"{archive}: unsafe member name {info.filename!r} "
                    "(absolute, '..', drive or link); refusing to read this archive"
                )
        by_name = {i.filename: i for i in infos if not i.is_dir()}
        prefixes = {p for name in by_name if (p := _cell_prefix(name)) is not None}
        if len(prefixes) != 1:
            found = "no Cell_XXX folders" if not prefixes else f"several ({sorted(prefixes)})"
            raise DataError(f"{archive}: expected one folder of Cell_XXX folders, found {found}")
        prefix = prefixes.pop()
        cell_names: dict[str, set[str]] = {}
        for name in by_name:
            if name.startswith(prefix):
                cell_dir, _, rest = name[len(prefix) :].partition("/")
                if layout.parse_cell_dir(cell_dir) is not None and rest:
                    cell_names.setdefault(cell_dir, set()).add(rest)
        release_name = PurePosixPath(prefix).name if prefix else archive.stem
        checked: dict[int, _Entry] = {}
        voxels: dict[str, list[float]] = {"raw": [], "gt": []}
        listings: dict[int, set[str]] = {}
        digest = hashlib.sha256()
        needed = needed_keys(structure)
        for cell in cells:
            cell_name = layout.CELL_DIR.format(cell=cell)
            if cell_name not in cell_names:
                raise DataError(
                    f"{archive}: cell {cell} ({prefix}{cell_name}/) not in the archive "
                    f"({len(cell_names)} Cell_XXX folders)"
                )
            listings[cell] = cell_names[cell_name]
            _check_layout(structure, listings[cell], f"{archive}:{prefix}{cell_name}", release_name)
            entry = {}
            for key, file in layout.release_files("", cell, structure=structure).items():
                if key not in needed:
                    continue
                name = PurePosixPath(file).as_posix()
                info = by_name.get(prefix + name)
                label = f"{archive}:{prefix}{name}"
                if info is None:
                    raise DataError(f"{label}: file not found (cell {cell})")
                with zf.open(info) as fh:
                    head = fh.read(HEADER_BYTES)
                entry[key] = (name, _check_header(head, info.file_size, label, voxels, key))
                digest.update(f"{name}:{info.file_size}:".encode() + head)
            _check_cell(entry, f"{archive}:{prefix}{cell_name}", structure)
            checked[cell] = {key: entry[key] for key in needed}
        for entry in checked.values():
            for name, _ in entry.values():
                _check_crc(zf, by_name[prefix + name], f"{archive}:{prefix}{name}")
    facts = _facts(structure, len(cell_names), listings, voxels, checked)
    return Source(archive, prefix, checked, digest.hexdigest(), structure.name, facts)


def _check_crc(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> None:
    """Read a member through (zipfile checks its CRC-32 at the end); raise DataError if corrupt."""
    try:
        with zf.open(info) as fh:
            while fh.read(1 << 20):
                pass
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(
            f"{label}: corrupt member ({exc}); the archive is damaged, download it again"
        ) from None


@contextlib.contextmanager
def cell_files(source: Source, cell: int, scratch: Path) -> Iterator[dict[str, Path]]:
    """Paths of one cell's needed files; from a zip, copies under `scratch` removed afterwards.

    A zip member is written to ``scratch/cell_XXX/<key>.mrc``, a name made
    here, so no member name can reach outside `scratch`.
    """
    entry = source.cells[cell]
    if source.zip_prefix is None:
        yield {key: source.path / name for key, (name, _) in entry.items()}
        return
    folder = scratch / f"cell_{cell:03d}.{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        paths = {}
        with zipfile.ZipFile(source.path) as zf:
            for key, (name, _) in entry.items():
                target = folder / f"{key}.mrc"
                member = source.zip_prefix + name
                try:
                    with zf.open(member) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise DataError(f"{source.path}:{member}: corrupt member ({exc})") from None
                paths[key] = target
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def file_label(source: Source, name: str) -> str:
    """How messages name a release file: ``FOLDER/Cell_001/SIM_gt.mrc`` or ``ZIP:MEMBER``."""
    if source.zip_prefix is None:
        return f"{source.path}/{name}"
    return f"{source.path}:{source.zip_prefix}{name}"


def read_level(path: Path, *, label: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Raw SIM frames of one level, ``(9, ny, nx)`` uint16 (mode 6 only).

    Parameters
    ----------
    path : Path
        The MRC file (for a zip, its extracted copy).
    label : str, optional
        What messages call the file (default `path`), see :func:`file_label`.

    Raises
    ------
    DataError
        A bad header, or frames that are each constant (their widefield mean
        would be a blank image, and so would every patch cut from it).
    """
    frames = read_mrc(path, modes=(6,)).data
    spread = np.ptp(frames.reshape(len(frames), -1), axis=1) if frames.size else np.zeros(1)
    if not spread.any():
        raise DataError(
            f"{label or path}: the raw SIM frames are constant ({int(frames.flat[0])} in every "
            "pixel); the stack holds no image: restore the file, or leave its cell out of "
            "--training-cells/--validate-cells/--test-cells"
        )
    return frames


def read_gt(path: Path, *, label: str | os.PathLike[str] | None = None) -> np.ndarray:
    """The SIM GT image, ``(ny, nx)`` float32 (mode 2 only), checked finite and not constant.

    Parameters
    ----------
    path : Path
        The MRC file (for a zip, its extracted copy).
    label : str, optional
        What messages call the file (default `path`), see :func:`file_label`.

    Raises
    ------
    DataError
        A bad header, more than one section, NaN or infinite pixels, or one
        value everywhere (patches cut from it would be blank or NaN).
    """
    label = label or path
    data = read_mrc(path, modes=(2,)).data
    if data.shape[0] != 1:
        raise DataError(f"{label}: {data.shape[0]} sections, expected one SIM GT image")
    gt = data[0]
    advice = (
        "restore the file, or leave its cell out of --training-cells/--validate-cells/--test-cells"
    )
    finite = np.isfinite(gt)
    if not finite.all():
        bad = int(gt.size - np.count_nonzero(finite))
        raise DataError(
            f"{label}: {bad:,} of {gt.size:,} SIM GT pixels are NaN or infinite; {advice}"
        )
    if gt.size and gt.min() == gt.max():
        raise DataError(
            f"{label}: the SIM GT is constant ({float(gt.flat[0]):g} everywhere); {advice}"
        )
    return gt
