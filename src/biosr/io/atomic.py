"""Atomic file writes: a temporary name in the same folder, then a rename.

A killed process can leave a temporary file behind (its name starts with
``.`` and ends with ``.part``), but never a half-written file under the final
name: :func:`os.replace` within one folder is atomic on POSIX and Windows.
A write that fails for want of space (``ENOSPC``, a quota, or ``EFBIG`` from a
file size limit; numpy's ``tofile`` reports it only as "N requested and M
written", without an errno) becomes one :class:`DiskFullError` naming the
file and the bytes written. The temporary name carries the writer's host
(a short hash of its name) and process id, so :func:`stale_parts` can tell a
dead writer's leftovers from a live one's; a part written from another host
(a shared file system) is never judged stale here.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

from biosr.errors import BiosrError

#: Suffix of temporary files; verify and resumable writers recognise it.
PART_SUFFIX = ".part"
#: This host in temporary names: the first hex digits of its name's sha256.
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def writer_tag(pid: int | None = None) -> str:
    """``HOST-PID`` of this host and process `pid` (default this one), as in temporary names."""
    return f"{HOST_TAG}-{os.getpid() if pid is None else int(pid)}"


def part_path(path: str | os.PathLike[str]) -> Path:
    """The temporary name used while writing `path` (hidden, same folder, unique per process)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{writer_tag()}{PART_SUFFIX}")


def is_part(name: str) -> bool:
    """True if `name` is a temporary file left by an atomic write."""
    return name.startswith(".") and name.endswith(PART_SUFFIX)


def part_pid(name: str) -> int | None:
    """The process id in a temporary name made on this host (:func:`part_path`), else None."""
    if not is_part(name):
        return None
    host, _, pid = name[: -len(PART_SUFFIX)].rpartition(".")[2].partition("-")
    return int(pid) if host == HOST_TAG and pid.isdigit() else None


def pid_alive(pid: int) -> bool:
    """True if a process with id `pid` runs on this machine (or may: no permission to ask)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_parts(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Temporary files (or folders) in `folder` whose writer is no longer running.

    A part is stale when the process id in its name (see :func:`part_path`)
    is not a live process on this machine; parts without an id (another
    writer's convention) are left to that writer. A reused process id only
    delays the cleaning until that process ends.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(f".*{PART_SUFFIX}") if recursive else folder.glob(f".*{PART_SUFFIX}")
    out = []
    for path in found:
        pid = part_pid(path.name)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            out.append(path)
    return sorted(out)


def remove_stale_parts(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Remove :func:`stale_parts` of `folder`; return what was removed."""
    import shutil

    removed = []
    for path in stale_parts(folder, recursive=recursive):
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


class DiskFullError(BiosrError):
    """A write failed for want of space (disk full, quota, or a file size limit)."""


#: errno values that mean "no room for these bytes".
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
#: numpy's ``tofile`` message on a short write (it drops the errno).
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def is_no_space(exc: BaseException) -> bool:
    """True if `exc` is an OSError for want of space (ENOSPC, EDQUOT, EFBIG, a short write)."""
    if not isinstance(exc, OSError):
        return False
    return exc.errno in _NO_SPACE or bool(_SHORT_WRITE.search(str(exc)))


def disk_full(path: str | os.PathLike[str], written: int, size: int | None = None) -> DiskFullError:
    """The error for a write of `path` that stopped after `written` of `size` bytes.

    Examples
    --------
    >>> str(disk_full("out/a.tif", 1960, 16384))
    'out/a.tif: disk full (wrote 1960 of 16384 bytes); free space there (or raise the file \
size limit) and run it again'
    """
    of = f"{written} of {size}" if size is not None else f"{written}"
    return DiskFullError(
        f"{path}: disk full (wrote {of} bytes); free space there (or raise the file size "
        "limit) and run it again"
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to `path` only if the block succeeds.

    Parameters
    ----------
    path : path-like
        Final file name. Its folder must exist.
    size : int, optional
        Bytes the block will write, if known: named in the :class:`DiskFullError`
        raised when the block fails for want of space (an OSError that is
        ENOSPC, EDQUOT, EFBIG or numpy's short write).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    tmp = part_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        written = 0
        with contextlib.suppress(OSError):
            written = tmp.stat().st_size
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if is_no_space(exc):
            raise disk_full(path, written, size) from None
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path, size=len(data)) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))
