"""Download one file over HTTP(S): resumable, retried, checksummed, never half-written.

What is hand-written here and why: pooch (used for hashes, see
:func:`check_hash`, and for DOI resolution in :mod:`biosr.acquire.download`) restarts
an interrupted download from zero and keeps no partial file. For a multi-GB
archive on a flaky link that is the difference between finishing and not, so
this module adds what pooch lacks:

- the bytes stream into a *stable* temporary name beside the target
  (``.NAME.part``, which :func:`biosr.io.atomic.is_part` recognises) and are
  renamed to the final name only after the checksum matches;
- after an interruption the next attempt (a retry, or the next run) asks for
  the rest with an HTTP ``Range`` request, guarded by ``If-Range`` with the
  validator (ETag or Last-Modified) the server gave first, so a file changed
  on the server is fetched afresh instead of being spliced; a partial file
  recorded (in ``.NAME.part.json``) for another URL is discarded likewise;
- transient failures (reset or dropped connections, time-outs, HTTP 5xx/429)
  are retried with exponential back-off;
- an HTML page served instead of the data (a login wall, an error page sent
  with status 200) is detected from the Content-Type and the first bytes.

The standard library's :mod:`urllib` does the HTTP; nothing here prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pooch.hashes

from biosr import __version__
from biosr._checks import check_non_negative_int
from biosr.errors import BiosrError, DataError, UnreachableError
from biosr.io.atomic import write_text

#: Bytes read per chunk of the response.
CHUNK = 1 << 20
#: Defaults of :func:`fetch` (and of :func:`biosr.acquire.download.fetch` and the command line):
#: retries after a dropped connection, first back-off in seconds (doubling), socket time-out.
RETRIES, BACKOFF_S, TIMEOUT_S = 5, 1.0, 60.0
#: Bytes sniffed at the start of a response for an HTML page.
SNIFF = 512
_HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body|<\?xml[^>]*>\s*<html)", re.I)
_USER_AGENT = f"biosr/{__version__} (+https://github.com/DeepTrackAI/biosr_dataset)"


class _Transient(Exception):
    """A failure worth retrying (the connection dropped, a time-out, a 5xx)."""


def part_file(dest: str | os.PathLike[str]) -> Path:
    """The stable temporary name a download of `dest` streams into (``.NAME.part``)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.part")


def looks_like_html(head: bytes) -> bool:
    """True if `head`, the first bytes of a response, start like an HTML page.

    Examples
    --------
    >>> looks_like_html(b"  <!DOCTYPE html><html>"), looks_like_html(b"PK\\x03\\x04")
    (True, False)
    """
    return bool(_HTML_START.match(head[:SNIFF]))


def check_known_hash(known_hash: str) -> str:
    """Check an expected hash's form before anything is downloaded; return it as ``alg:hex``.

    Parameters
    ----------
    known_hash : str
        ``"HEX"`` (sha256), ``"md5:HEX"``, ``"sha256:HEX"`` or another :mod:`hashlib`
        algorithm (pooch's convention).

    Returns
    -------
    str
        ``"alg:hex"``, lower case.

    Raises
    ------
    BiosrError
        An unknown algorithm, or a digest that is not hex of that algorithm's length.

    Examples
    --------
    >>> check_known_hash("MD5:" + "AB" * 16)
    'md5:abababababababababababababababab'
    """
    alg = pooch.hashes.hash_algorithm(known_hash)
    digest = known_hash.split(":")[-1].lower()
    try:
        length = 2 * hashlib.new(alg).digest_size
    except (ValueError, TypeError):
        raise BiosrError(
            f"{known_hash}: unknown hash algorithm {alg!r}; give 'sha256:HEX' or 'md5:HEX'"
        ) from None
    if not re.fullmatch(r"[0-9a-f]+", digest) or len(digest) != length:
        raise BiosrError(
            f"{known_hash}: not a {alg} checksum (expected {length} hex digits, got "
            f"{len(digest)} characters); give 'sha256:HEX' or 'md5:HEX'"
        )
    return f"{alg}:{digest}"


def check_hash(
    path: str | os.PathLike[str], known_hash: str, *, source: str = "", deleted: bool = False
) -> None:
    """Compare a file's hash with `known_hash` (pooch's ``"alg:hex"`` form, default sha256).

    Parameters
    ----------
    path : path-like
        The file.
    known_hash : str
        Expected hash.
    source : str, optional
        What the message names (default `path`).
    deleted : bool, optional
        The caller deletes the file on a mismatch (a download): say so.

    Raises
    ------
    DataError
        ``"SOURCE: checksum mismatch ..."`` when the hashes differ.
    """
    alg = pooch.hashes.hash_algorithm(known_hash)
    expected = known_hash.split(":")[-1].lower()
    actual = pooch.hashes.file_hash(str(path), alg=alg)
    if actual != expected:
        advice = (
            "the download was deleted for safety; run again to fetch it afresh, or check "
            "that the expected hash is current"
            if deleted
            else "check that the file is complete and that the expected hash is current"
        )
        raise DataError(
            f"{source or path}: checksum mismatch ({alg} {actual}, expected {expected}); {advice}"
        )


def fetch(
    url: str,
    dest: str | os.PathLike[str],
    *,
    known_hash: str | None = None,
    retries: int = RETRIES,
    backoff: float = BACKOFF_S,
    timeout: float = TIMEOUT_S,
    progress: bool = False,
) -> Path:
    """Download `url` to `dest`, resuming a previous partial download.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` address of the file.
    dest : path-like
        Final file name; its folder is created. If it already exists and
        matches `known_hash` (or no hash is given) nothing is downloaded.
    known_hash : str, optional
        Expected hash, ``"md5:HEX"``, ``"sha256:HEX"`` or bare sha256 hex
        (pooch's convention). Without it only the length is checked.
    retries : int, optional
        Further attempts after a transient failure (default 5); each resumes
        where the last stopped.
    backoff : float, optional
        Seconds before the first retry, doubled each time (default 1).
    timeout : float, optional
        Seconds without data before a connection counts as dropped.
    progress : bool, optional
        Show a byte progress bar on stderr.

    Returns
    -------
    Path
        `dest`, complete and checked.

    Raises
    ------
    UnreachableError
        The host cannot be reached (offline, blocked, unknown name).
    DataError
        Checksum mismatch, an HTML page instead of data, or a permanent HTTP
        error (404 ...). Nothing is left under `dest`; a corrupt partial file
        is deleted, an interrupted one is kept for the next run to resume.
    BiosrError
        A malformed `known_hash` or negative `retries` (before any request), or
        still interrupted after all retries (the partial file is kept).
    """
    if known_hash is not None:
        known_hash = check_known_hash(known_hash)
    retries = check_non_negative_int(retries, "retries")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(dest):
        return _fetch(url, dest, known_hash, retries, backoff, timeout, progress)


@contextlib.contextmanager
def exclusive(dest: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the lock of downloads to `dest` (``.NAME.lock``, :func:`fcntl.flock`) or refuse.

    Two downloads of one file would stream into one ``.NAME.part``; the second
    is refused at once instead. The lock file is removed on release (while
    still held; a process that opened it meanwhile sees a new inode and tries
    again). Without :mod:`fcntl` (Windows) nothing is locked.

    Raises
    ------
    BiosrError
        If another process downloads `dest` now.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    dest = Path(dest)
    lock = dest.with_name(f".{dest.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BiosrError(
                f"{dest}: another download of this file is running (it holds {lock}); "
                "let it finish, or stop it, then run again"
            ) from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def _fetch(
    url: str,
    dest: Path,
    known_hash: str | None,
    retries: int,
    backoff: float,
    timeout: float,
    progress: bool,
) -> Path:
    """:func:`fetch` once it holds the lock."""
    if dest.is_file():
        if known_hash is None:
            return dest
        try:
            check_hash(dest, known_hash, source=str(dest))
            return dest
        except DataError:
            dest.unlink()
    part = part_file(dest)
    for attempt in range(retries + 1):
        try:
            _attempt(url, part, timeout=timeout, progress=progress)
            break
        except _Transient as exc:
            if attempt == retries:
                have = part.stat().st_size if part.exists() else 0
                raise BiosrError(
                    f"{url}: download interrupted {retries + 1} time(s) ({exc}); "
                    f"{have:,} bytes kept in {part}: run the same command again to resume"
                ) from None
            time.sleep(backoff * 2**attempt)
    if known_hash is not None:
        try:
            check_hash(part, known_hash, source=url, deleted=True)
        except DataError:
            _discard(part)
            raise
    os.replace(part, dest)
    with contextlib.suppress(FileNotFoundError):
        part.with_name(part.name + ".json").unlink()
    return dest


def _discard(part: Path) -> None:
    for path in (part, part.with_name(part.name + ".json")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _attempt(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """One request: resume into `part` from its current size until the server's end."""
    meta_path = part.with_name(part.name + ".json")
    start = part.stat().st_size if part.exists() else 0
    meta = _read_meta(meta_path) if start else {}
    if start and meta.get("url") != url:  # a partial of another address: never splice it
        _discard(part)
        start, meta = 0, {}
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start and meta.get("total") == start:
            return  # the part is already complete
        if exc.code == 416:
            _discard(part)  # the part does not fit the file on the server: start afresh
            raise _Transient("the partial file did not match the server's; restarting") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        _raise_connection(url, exc.reason)
    except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        raise _Transient(_describe(exc)) from None
    with response:
        if response.status == 206:
            first = _content_range_start(response.headers.get("Content-Range", ""))
            if first != start:
                _discard(part)
                raise _Transient("the server resumed at the wrong offset; restarting")
            mode = "ab"
        else:
            start, mode = 0, "wb"  # 200: the server sent the whole file (no or stale Range)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        ctype = response.headers.get("Content-Type", "")
        if start == 0:
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            _write_meta(meta_path, {"url": url, "validator": validator, "total": total})
        _stream(response, part, mode, start, total, ctype, url, progress)


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    mode: str,
    start: int,
    total: int | None,
    ctype: str,
    url: str,
    progress: bool,
) -> None:
    update: Callable[[int], object] = lambda n: None  # noqa: E731
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removeprefix(".").removesuffix(".part"), leave=False,
        )  # fmt: skip
        update = pbar.update
    got = start
    try:
        with open(part, mode) as fh:
            first = True
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
                    raise _Transient(_describe(exc)) from None
                if not chunk:
                    break
                if first and start == 0:
                    first = False
                    if "html" in ctype.lower() or looks_like_html(chunk):
                        fh.close()
                        _discard(part)
                        raise DataError(
                            f"{url}: the server sent an HTML page instead of the file "
                            f"(Content-Type {ctype or 'unknown'}); the link may have moved or "
                            "need a login: open it in a browser, or use another --source"
                        )
                fh.write(chunk)
                got += len(chunk)
                update(len(chunk))
    finally:
        if pbar is not None:
            pbar.close()
    if total is not None and got < total:
        raise _Transient(f"connection closed after {got:,} of {total:,} bytes")


def _raise_connection(url: str, reason: object) -> None:
    if isinstance(reason, socket.gaierror | ConnectionRefusedError):
        host = urllib.request.urlparse(url).netloc
        raise UnreachableError(
            f"{url}: cannot reach {host} ({_describe(reason)}); if you are offline or it is "
            "blocked, fetch the data elsewhere and pass its URL or path with --source, or copy "
            "the dataset here and run `biosr verify ROOT`"
        ) from None
    raise _Transient(_describe(reason))


def _describe(exc: object) -> str:
    if isinstance(exc, BaseException):
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return " ".join(str(text).split())
    return str(exc)


def _content_range_start(value: str) -> int | None:
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", value.strip())
    return int(match.group(1)) if match else None


def _read_meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_meta(path: Path, meta: dict) -> None:
    write_text(path, json.dumps(meta))
