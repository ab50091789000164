"""Unpack a zip or tar archive of the dataset layout, safely and atomically.

Hand-written on top of :mod:`zipfile` and :mod:`tarfile` because neither does
all three things needed here: ``ZipFile.extractall`` silently rewrites a
``../`` member instead of refusing the archive, both write members in place
(a killed run leaves a half-written file under its final name), and neither
skips members already extracted by an interrupted earlier run. So:

- every member name is checked *before* anything is written: absolute names,
  ``..`` components, and links or devices are refused, and the archive with
  them (:class:`~biosr.errors.DataError`);
- each file is copied to a temporary name and renamed
  (:func:`biosr.io.atomic.atomic_path`);
- a file already present with the member's size and modification time
  (which extraction copies from the member) is left alone (resume); one of
  the same size but another time, such as an image of a newer mirror, is
  replaced.
"""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple

from biosr._progress import bar
from biosr.errors import DataError
from biosr.io.atomic import atomic_path


class Member(NamedTuple):
    """One archive entry: its checked relative name, kind, size and modification time."""

    name: PurePosixPath
    is_dir: bool
    size: int
    handle: object  # ZipInfo or TarInfo, for :func:`_opener`
    mtime: float = 0.0  # seconds since the epoch, whole seconds


#: What zipfile, tarfile and their decompressors raise on a corrupt or truncated archive.
CORRUPT = (
    tarfile.TarError, EOFError, zlib.error, zipfile.BadZipFile, lzma.LZMAError, gzip.BadGzipFile,
)  # fmt: skip
#: While listing, also an OSError (bz2 reports bad data as one); not while writing files.
_CORRUPT_LISTING = (*CORRUPT, OSError)


def archive_kind(path: str | os.PathLike[str]) -> str:
    """``"zip"`` or ``"tar"`` (any compression tarfile reads), from the file's content.

    Raises
    ------
    DataError
        If the file is neither, or is corrupt or truncated.
    """
    try:
        if zipfile.is_zipfile(path):
            return "zip"
        if tarfile.is_tarfile(path):
            return "tar"
    except _CORRUPT_LISTING as exc:
        raise _corrupt(path, exc) from None
    raise DataError(f"{path}: not a zip or tar archive")


def _corrupt(archive: str | os.PathLike[str], exc: BaseException) -> DataError:
    return DataError(f"{archive}: corrupt or truncated archive ({_describe(exc)})")


def _describe(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def safe_name(name: str, archive: str | os.PathLike[str] = "") -> PurePosixPath:
    """A member name as a relative path that stays inside the target, or raise DataError.

    Examples
    --------
    >>> safe_name("./BioSR/Microtubules/test_gt/001.tif").as_posix()
    'BioSR/Microtubules/test_gt/001.tif'
    >>> safe_name("../evil")
    Traceback (most recent call last):
    ...
    biosr.errors.DataError: : member '../evil' would land outside the target folder; refused
    """
    text = name.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in parts or not parts:
        raise DataError(f"{archive}: member {name!r} would land outside the target folder; refused")
    return PurePosixPath(*parts)


def members(archive: str | os.PathLike[str]) -> list[Member]:
    """Every entry of `archive`, names checked; links, devices and unsafe names refused."""
    kind = archive_kind(archive)
    try:
        return _list(archive, kind)
    except _CORRUPT_LISTING as exc:
        raise _corrupt(archive, exc) from None


def _list(archive: str | os.PathLike[str], kind: str) -> list[Member]:
    out: list[Member] = []
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = safe_name(info.filename, archive)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise DataError(f"{archive}: member {info.filename!r} is a link; refused")
                mtime = time.mktime((*info.date_time, 0, 0, -1))  # zip stores local time
                out.append(Member(name, info.is_dir(), info.file_size, info, int(mtime)))
    else:
        with tarfile.open(archive) as tf:
            for info in tf:
                name = safe_name(info.name, archive)
                if not (info.isfile() or info.isdir()):
                    raise DataError(f"{archive}: member {info.name!r} is a link or device; refused")
                out.append(Member(name, info.isdir(), info.size, info, int(info.mtime)))
    return out


@contextmanager
def _opener(archive: Path, kind: str) -> Iterator[Callable[[Member], IO[bytes]]]:
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            yield lambda m: zf.open(m.handle)  # type: ignore[arg-type]
    else:
        with tarfile.open(archive) as tf:

            def open_member(m: Member) -> IO[bytes]:
                fh = tf.extractfile(m.handle)  # type: ignore[arg-type]
                if fh is None:  # pragma: no cover - only regular files reach here
                    raise DataError(f"{archive}: member {m.name} cannot be read")
                return fh

            yield open_member


def _unchanged(dest: Path, m: Member) -> bool:
    """True if `dest` is `m` as extracted earlier: same size and modification time."""
    try:
        st = dest.stat()
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == m.size and int(st.st_mtime) == int(m.mtime)


def extract(
    archive: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    rename: Callable[[PurePosixPath], PurePosixPath | None] | None = None,
    progress: bool = False,
    entries: Sequence[Member] | None = None,
) -> list[Path]:
    """Extract `archive` into `target`, refusing members that would land outside it.

    Parameters
    ----------
    archive : path-like
        A zip or tar file (tar may be gzip, bzip2 or xz compressed).
    target : path-like
        Folder to extract into; created if needed.
    rename : callable, optional
        Maps each member's relative name to where it goes under `target`,
        or None to skip it (used to pick splits and to drop a wrapping
        folder). Default: every member at its own name.
    progress : bool, optional
        Show a progress bar over the members.
    entries : sequence of Member, optional
        What :func:`members` returned for `archive`, when the caller has
        listed it already (listing a compressed tar reads all of it).

    Returns
    -------
    list of Path
        The files now present under `target` for the selected members
        (extracted now, or already complete from an earlier run).

    Raises
    ------
    DataError
        Not an archive, an unsafe member (nothing is extracted then), or a
        corrupt member (CRC error).
    """
    archive, target = Path(archive), Path(target)
    if entries is None:
        entries = members(archive)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    plan: list[tuple[Member, Path]] = []
    for m in entries:
        rel = rename(m.name) if rename is not None else m.name
        if rel is None or m.is_dir:
            continue
        dest = target / rel
        if not dest.resolve().is_relative_to(root):  # a rename or a symlink on disk escapes
            raise DataError(f"{archive}: member {m.name} would land outside {target}; refused")
        plan.append((m, dest))
    done: list[Path] = []
    if not plan:
        return done
    kind = "zip" if isinstance(plan[0][0].handle, zipfile.ZipInfo) else "tar"
    with _opener(archive, kind) as open_member:
        for m, dest in bar(plan, enabled=progress, total=len(plan), desc="extract", unit="file"):
            if _unchanged(dest, m):
                done.append(dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open_member(m) as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.utime(dest, (m.mtime, m.mtime))  # what the next run compares
            except CORRUPT as exc:
                raise DataError(
                    f"{archive}: member {m.name} is corrupt ({_describe(exc)})"
                ) from None
            done.append(dest)
    return done
