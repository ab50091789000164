"""Atomic file writes: a temporary name in the same folder, then a rename.

A killed process can leave a temporary file behind (its name starts with
``.`` and ends with ``.part``), but never a half-written file under the final
name: :func:`os.replace` within one folder is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: Suffix of temporary files; verify and resumable writers recognise it.
PART_SUFFIX = ".part"


def part_path(path: str | os.PathLike[str]) -> Path:
    """The temporary name used while writing `path` (hidden, same folder, unique per process)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{PART_SUFFIX}")


def is_part(name: str) -> bool:
    """True if `name` is a temporary file left by an atomic write."""
    return name.startswith(".") and name.endswith(PART_SUFFIX)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to `path` only if the block succeeds.

    Parameters
    ----------
    path : path-like
        Final file name. Its folder must exist.

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
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))
