"""Who made a folder: every producer claims what it writes, and replaces only what it claimed.

Each producer (``simulate``, ``build``, ``baseline``, ``predict``, ``train``,
``evaluate``) leaves a small hidden marker, :data:`MARKER`, in the folder it
makes, naming itself. Before writing into a folder that is not empty it asks
:func:`check_replaceable`: a folder it claimed may be replaced (or resumed);
one another producer claimed, or one without a marker (a download, a user's
own files), is refused unless the user passes ``--force``. Even then only the
producer's own files are written over; a user's files are never deleted.

The marker also lists the *cards* a producer wrote to describe the folder
(``baseline.json``): when another producer takes the folder over with
``--force``, :func:`claim` removes them, so no card describes files it no
longer matches. :func:`replaced_folder` replaces a whole folder (a report) at
once: the new one is written under a temporary name, then swapped in.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from biosr.errors import BiosrError
from biosr.io.atomic import (
    PART_SUFFIX,
    part_pid,
    pid_alive,
    remove_stale_parts,
    write_text,
    writer_tag,
)

#: The marker file a producer writes into each folder it makes.
MARKER = ".biosr_owner.json"
#: Format tag of the marker.
FORMAT = "biosr-owner/1"
#: Help of every command's ``--force``.
FORCE_HELP = (
    "also replace output that another command made (or that biosr did not make); "
    "your own files there are kept"
)
#: Middle of the name an old folder takes while :func:`replaced_folder` swaps it out.
_OLD = ".old"


def read_claim(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of `folder` as a dict, or None if it has none (or an unreadable one)."""
    try:
        claim_ = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(claim_, dict) or claim_.get("format") != FORMAT:
        return None
    return claim_


def owner(folder: str | os.PathLike[str]) -> str | None:
    """The producer that claimed `folder` (``"simulate"``, ``"train"``...), or None."""
    claim_ = read_claim(folder)
    producer = None if claim_ is None else claim_.get("producer")
    return producer if isinstance(producer, str) else None


def is_empty(folder: str | os.PathLike[str]) -> bool:
    """True if `folder` does not exist or holds nothing (a file is not empty)."""
    folder = Path(folder)
    if not folder.exists():
        return True
    return folder.is_dir() and not any(folder.iterdir())


def check_replaceable(
    folder: str | os.PathLike[str], producer: str, *, force: bool = False
) -> None:
    """Refuse to write into `folder` unless it is empty, claimed by `producer`, or `force`.

    Parameters
    ----------
    folder : path-like
        The output folder.
    producer : str
        The command about to write (``"simulate"``, ``"predict"``...).
    force : bool, optional
        Accept any folder (the command's ``--force``).

    Raises
    ------
    BiosrError
        If `folder` is a file, or is neither empty nor `producer`'s and
        `force` is False.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "notes.txt").write_text("mine")
    >>> check_replaceable(d, "predict")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    biosr.errors.BiosrError: ...: holds files biosr did not make; ...
    >>> check_replaceable(d, "predict", force=True)
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BiosrError(f"{folder}: exists and is not a folder; choose another output")
    if force or is_empty(folder):
        return
    found = owner(folder)
    if found == producer:
        return
    made = "holds files biosr did not make" if found is None else f"made by `biosr {found}`"
    raise BiosrError(
        f"{folder}: {made}; `biosr {producer}` replaces only what it made; choose another "
        "folder or pass --force (your own files are kept)"
    )


def claim(
    folder: str | os.PathLike[str],
    producer: str,
    *,
    cards: Iterable[str] = (),
    files: Iterable[str] | None = None,
) -> Path:
    """Mark `folder` (created if needed) as made by `producer`; return the marker's path.

    If another producer claimed it before (the caller passed ``--force``), the
    cards that producer listed are removed first, so none describes the new
    contents. Temporaries that killed writers left anywhere in `folder`
    (:func:`biosr.io.atomic.stale_parts`) are removed too: a re-run cleans
    what the run before it could not.

    Parameters
    ----------
    folder : path-like
        The output folder.
    producer : str
        The command writing it.
    cards : iterable of str, optional
        Names of the files in `folder` that describe it (``baseline.json``).
    files : iterable of str, optional
        Every name the producer wrote (for :func:`replaced_folder`: entries
        not listed are the user's and are carried over).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(folder, recursive=True)
    before = read_claim(folder)
    if before is not None and before.get("producer") != producer:
        for name in before.get("cards", []):
            target = folder / str(name)
            if target.parent == folder and target.is_file():
                target.unlink()
    from biosr import __version__

    marker: dict[str, Any] = {
        "format": FORMAT,
        "producer": producer,
        "biosr_version": __version__,
        "cards": sorted(cards),
    }
    if files is not None:
        marker["files"] = sorted(files)
    write_text(folder / MARKER, json.dumps(marker, indent=2) + "\n")
    return folder / MARKER


def _sibling(folder: Path, tag: str, pid: int) -> Path:
    return folder.with_name(f".{folder.name}{tag}.{writer_tag(pid)}{PART_SUFFIX}")


def _carry_over(old: Path, new: Path) -> None:
    """Move the entries of `old` that its producer did not write (and `new` lacks) into `new`."""
    claim_ = read_claim(old) or {}
    written = set(claim_.get("files", [])) | set(claim_.get("cards", [])) | {MARKER}
    for entry in old.iterdir():
        if entry.name not in written and not (new / entry.name).exists():
            os.replace(entry, new / entry.name)


def _finish(old: Path, folder: Path) -> None:
    """Complete a swap that left `old` behind: restore it if `folder` is gone, else merge."""
    if not folder.exists():
        os.replace(old, folder)
        return
    _carry_over(old, folder)
    shutil.rmtree(old)


def recover(folder: str | os.PathLike[str]) -> None:
    """Clean what a killed :func:`replaced_folder` of `folder` left beside it.

    A stale new folder is removed; a stale old one is put back if `folder`
    is missing (the kill fell between the two renames), else its user files
    are moved into `folder` and the rest removed.
    """
    folder = Path(folder)
    parent = folder.parent
    if not parent.is_dir():
        return
    for path in sorted(parent.glob(f".{folder.name}*{PART_SUFFIX}")):
        pid = part_pid(path.name)
        if pid is None or pid == os.getpid() or pid_alive(pid) or not path.is_dir():
            continue
        stem = path.name[1 : -len(PART_SUFFIX)].rpartition(".")[0]
        if stem == folder.name + _OLD:
            _finish(path, folder)
        elif stem == folder.name:
            shutil.rmtree(path)


@contextlib.contextmanager
def replaced_folder(
    folder: str | os.PathLike[str], producer: str, *, force: bool = False
) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces `folder` whole.

    `folder` is checked first (:func:`check_replaceable`); the block writes
    into the yielded folder and returns; the names it wrote are claimed for
    `producer`, the old folder is renamed aside, the new one renamed into
    place, the old folder's user files (names its producer did not write)
    moved across, and the old folder removed. A failure (or a kill) inside
    the block leaves `folder` as it was; leftovers of a kill are cleaned by
    the next call (:func:`recover`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report"
    >>> with replaced_folder(out, "evaluate") as tmp:
    ...     _ = (tmp / "summary.md").write_text("new")
    >>> sorted(p.name for p in out.iterdir())
    ['.biosr_owner.json', 'summary.md']
    """
    folder = Path(folder)
    recover(folder)
    check_replaceable(folder, producer, force=force)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(folder, "", os.getpid())
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        claim(tmp, producer, files=[p.name for p in tmp.iterdir()])
    except BiosrError as exc:  # name the file the user asked for, not the temporary one
        shutil.rmtree(tmp, ignore_errors=True)
        raise type(exc)(str(exc).replace(str(tmp), str(folder))) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not folder.exists():
        os.replace(tmp, folder)
        return
    old = _sibling(folder, _OLD, os.getpid())
    os.replace(folder, old)
    os.replace(tmp, folder)
    _finish(old, folder)
