"""The original BioSR release as builder input: find it, check every cell's files, read a cell.

A source is an extracted release (a folder of ``Cell_XXX`` folders, or its
parent holding ``Microtubules/``) or ``Microtubules.zip`` itself. Opening it
checks, before anything is written anywhere, that every needed file exists
and that its MRC header agrees with its size, mode and shape (raw levels:
mode 6, 9 frames; ``SIM_gt.mrc``: mode 2, exactly twice the raw size). A zip
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
from typing import NamedTuple

import numpy as np

from biosr import layout
from biosr.errors import DataError
from biosr.io.mrc import HEADER_BYTES, check_header, read_mrc

#: Keys of a cell's files used by the builder (see :func:`biosr.layout.release_files`).
LEVEL_KEYS: tuple[str, ...] = tuple(f"level_{lv:02d}" for lv in layout.LEVELS)
GT_KEY = "sim_gt"
NEEDED: tuple[str, ...] = (*LEVEL_KEYS, GT_KEY)


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
        ``name`` is relative to the release (``Cell_001/SIM_gt.mrc``).
    fingerprint : str
        sha256 over the checked files' names, sizes and headers: what a
        resumed build compares (not the location, which may move).
    """

    path: Path
    zip_prefix: str | None
    cells: dict[int, dict[str, tuple[str, tuple[int, ...]]]]
    fingerprint: str


def open_source(source: str | os.PathLike[str], cells: tuple[int, ...]) -> Source:
    """Find the release at `source` and check the files of `cells`.

    Parameters
    ----------
    source : path-like
        A folder holding ``Cell_XXX`` folders, its parent holding
        ``Microtubules/`` (or ``Microtubules.zip``), or the zip itself.
    cells : tuple of int
        Cells the build will read.

    Returns
    -------
    Source

    Raises
    ------
    DataError
        One line naming the file: missing cell or file, truncated MRC,
        unexpected mode or shape, WF:GT not 1:2, unsafe zip member.
    """
    path = Path(source)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not a zip archive nor a release folder")
        return _open_zip(path, cells)
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    folder = _release_folder(path)
    if folder is None:
        archive = path / layout.RELEASE_ARCHIVE
        if archive.is_file():
            return _open_zip(archive, cells)
        raise DataError(
            f"{path}: no BioSR release here (expected Cell_XXX folders, "
            f"Microtubules/ or {layout.RELEASE_ARCHIVE})"
        )
    checked: dict[int, dict[str, tuple[str, tuple[int, ...]]]] = {}
    digest = hashlib.sha256()
    for cell in cells:
        cell_dir = layout.release_cell_dir(folder, cell)
        if not cell_dir.is_dir():
            raise DataError(f"{cell_dir}: cell {cell} not found in the release")
        files = layout.release_files(folder, cell)
        entry = {}
        for key in NEEDED:
            file = files[key]
            try:
                size = file.stat().st_size
                with open(file, "rb") as fh:
                    head = fh.read(HEADER_BYTES)
            except FileNotFoundError:
                raise DataError(f"{file}: file not found (cell {cell})") from None
            except OSError as exc:
                raise DataError(f"{file}: unreadable ({exc.strerror})") from None
            name = file.relative_to(folder).as_posix()
            entry[key] = (name, _check_header(head, size, str(file)))
            digest.update(f"{name}:{size}:".encode() + head)
        _check_cell(entry, cell_dir)
        checked[cell] = entry
    return Source(folder, None, checked, digest.hexdigest())


def _release_folder(path: Path) -> Path | None:
    for candidate in (path, path / layout.STRUCTURE):
        if candidate.is_dir() and any(
            layout.parse_cell_dir(e.name) is not None and e.is_dir() for e in os.scandir(candidate)
        ):
            return candidate
    return None


def _check_header(head: bytes, size: int, label: str) -> tuple[int, ...]:
    """Check an MRC header's shape x mode against the file size; return ``(mode, nz, ny, nx)``."""
    header = check_header(head, size, label)
    return (int(header.mode), int(header.nz), int(header.ny), int(header.nx))


def _check_cell(entry: dict[str, tuple[str, tuple[int, ...]]], where: Path | str) -> None:
    """Check modes and shapes of one cell's headers (raw: mode 6, 9 frames; GT: mode 2, 2x)."""
    raw_shape = None
    for key in LEVEL_KEYS:
        name, (mode, nz, ny, nx) = entry[key]
        label = f"{where}/{PurePosixPath(name).name}"
        if mode != 6:
            raise DataError(f"{label}: unexpected MRC mode {mode} for raw SIM frames (expected 6)")
        if nz != layout.RAW_FRAMES:
            raise DataError(f"{label}: {nz} frames, expected {layout.RAW_FRAMES}")
        if raw_shape is None:
            raw_shape = (ny, nx)
        elif (ny, nx) != raw_shape:
            raise DataError(f"{label}: frames {ny}x{nx}, other levels of the cell {raw_shape}")
    name, (mode, nz, ny, nx) = entry[GT_KEY]
    label = f"{where}/{PurePosixPath(name).name}"
    if mode != 2:
        raise DataError(f"{label}: unexpected MRC mode {mode} for the SIM GT (expected 2)")
    if nz != 1:
        raise DataError(f"{label}: {nz} sections, expected one SIM GT image")
    assert raw_shape is not None
    if (ny, nx) != (2 * raw_shape[0], 2 * raw_shape[1]):
        raise DataError(
            f"{label}: GT {ny}x{nx} and raw {raw_shape[0]}x{raw_shape[1]} are not in a 1:2 ratio"
        )


def _safe_member(name: str) -> bool:
    if not name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return False
    return ".." not in PurePosixPath(name).parts


def _open_zip(archive: Path, cells: tuple[int, ...]) -> Source:
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
        prefixes = {
            "".join(f"{p}/" for p in parts[:-2])
            for name in by_name
            if len(parts := PurePosixPath(name).parts) >= 2
            and layout.parse_cell_dir(parts[-2]) is not None
        }
        if len(prefixes) != 1:
            found = "no Cell_XXX folders" if not prefixes else f"several ({sorted(prefixes)})"
            raise DataError(f"{archive}: expected one folder of Cell_XXX folders, found {found}")
        prefix = prefixes.pop()
        checked: dict[int, dict[str, tuple[str, tuple[int, ...]]]] = {}
        digest = hashlib.sha256()
        for cell in cells:
            cell_name = layout.CELL_DIR.format(cell=cell)
            if not any(n.startswith(f"{prefix}{cell_name}/") for n in by_name):
                raise DataError(f"{archive}: cell {cell} ({prefix}{cell_name}/) not in the archive")
            entry = {}
            for key, file in layout.release_files("", cell).items():
                if key not in NEEDED:
                    continue
                name = PurePosixPath(file).as_posix()
                info = by_name.get(prefix + name)
                label = f"{archive}:{prefix}{name}"
                if info is None:
                    raise DataError(f"{label}: file not found (cell {cell})")
                with zf.open(info) as fh:
                    head = fh.read(HEADER_BYTES)
                entry[key] = (name, _check_header(head, info.file_size, label))
                digest.update(f"{name}:{info.file_size}:".encode() + head)
            _check_cell(entry, f"{archive}:{prefix}{cell_name}")
            checked[cell] = entry
        for entry in checked.values():
            for name, _ in entry.values():
                _check_crc(zf, by_name[prefix + name], f"{archive}:{prefix}{name}")
    return Source(archive, prefix, checked, digest.hexdigest())


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
