"""Fetch folders of a git repository: a partial, shallow clone with a sparse checkout.

Driven through the system ``git`` (2.27 or newer) because nothing in Python
does partial clone well. The recipe:

1. ``git clone --filter=blob:none --depth 1 --no-checkout --sparse URL ROOT``
   transfers one commit and its trees, no file contents;
2. ``git sparse-checkout set --cone DIR ...`` selects the wanted folders;
3. ``git checkout`` (first time) or ``git checkout HEAD -- DIR ...`` (later)
   writes them, and git fetches exactly those files' blobs.

Re-running on the same ROOT resumes: the clone is reused (only a clone of
the same URL: any other repository there, such as the user's own project, is
refused untouched), the sparse set
grows to the union of what was asked, and missing or damaged files of all
its folders are restored. Each folder is added in its own step, so an
interruption loses at most the folder in flight. Nothing here prints unless
``progress=True``, when git's own progress lines are passed to stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from biosr.errors import BiosrError, UnreachableError

#: A line of git's progress output ("Receiving objects:  42% ...").
_PERCENT = re.compile(rb"\d+% \(")
#: Phrases in git's errors that mean the remote could not be reached at all.
_UNREACHABLE = (
    "could not resolve host",
    "failed to connect",
    "connection refused",
    "network is unreachable",
    "could not read from remote repository",
    "does not appear to be a git repository",
    "unable to access",
    "timed out",
)


def git_executable() -> str:
    """Path of the system ``git``; BiosrError with what to do if there is none."""
    exe = shutil.which("git")
    if exe is None:
        raise BiosrError(
            "git: not found on PATH; install git (https://git-scm.com/downloads), "
            "or use --source figshare or --source URL_OR_PATH of an archive"
        )
    return exe


def _run(
    args: Sequence[str], *, cwd: Path | None = None, progress: bool = False, url: str = ""
) -> str:
    """Run git; return stdout. Errors become one-line BiosrError/UnreachableError."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never block on a password prompt
    cmd = [git_executable(), *args]
    if progress:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        tail, pending = bytearray(), b""
        assert proc.stderr is not None and proc.stdout is not None
        while chunk := proc.stderr.read1(4096):  # type: ignore[attr-defined]
            tail = (tail + chunk)[-4000:]
            *lines, pending = re.split(rb"(?<=[\r\n])", pending + chunk)
            shown = b"".join(ln for ln in lines if _PERCENT.search(ln))  # progress, not errors
            if shown:
                sys.stderr.write(shown.decode(errors="replace"))
                sys.stderr.flush()
        out = proc.stdout.read()
        code = proc.wait()
        err = bytes(tail)
    else:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
        code, out, err = done.returncode, done.stdout, done.stderr
    if code != 0:
        message = _last_error(err.decode(errors="replace"))
        if any(p in message.lower() for p in _UNREACHABLE):
            raise UnreachableError(
                f"{url or 'git'}: cannot be reached ({message}); if you are offline or it is "
                "blocked, fetch the data elsewhere and pass its URL or path with --source, or "
                "copy the dataset here and run `biosr verify ROOT`"
            )
        verb = args[2] if args[0] == "-C" else args[0]
        raise BiosrError(f"git {verb}: {message}")
    return out.decode(errors="replace")


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith(("fatal:", "error:"))]
    return " ".join((errors or lines or ["failed"])[-2:])


def is_clone(root: str | os.PathLike[str]) -> bool:
    """True if `root` is the top of a git working tree (a previous fetch, or any repository)."""
    return (Path(root) / ".git").exists()


#: Git config key recording the URL a clone was made from (written at clone time).
URL_KEY = "biosr.url"


def _config(root: Path, key: str) -> str:
    """A git config value of the repository at `root`, or "" if unset."""
    try:
        return _run(["-C", str(root), "config", "--get", key]).strip()
    except BiosrError:  # exit 1: the key is not set
        return ""


def _same_url(a: str, b: str) -> bool:
    def norm(u: str) -> str:
        return u.strip().rstrip("/").removesuffix(".git")

    return bool(a) and norm(a) == norm(b)


def check_clone_of(root: str | os.PathLike[str], url: str) -> None:
    """Raise BiosrError unless the repository at `root` is a clone of `url`.

    A clone made here records `url` under :data:`URL_KEY`; one made by hand
    (``git clone URL``) has it as ``remote.origin.url``. Anything else, such
    as the user's own project, is refused before git touches its files.
    """
    root = Path(root)
    recorded = (_config(root, URL_KEY), _config(root, "remote.origin.url"))
    if not any(_same_url(u, url) for u in recorded):
        raise BiosrError(
            f"{root}: a git repository that is not a clone of {url}; choose an empty folder"
        )


def sparse_fetch(
    url: str,
    root: str | os.PathLike[str],
    folders: Sequence[str],
    *,
    progress: bool = False,
) -> str:
    """Clone `url` into `root` (or reuse a clone there) and check out only `folders`.

    Parameters
    ----------
    url : str
        Repository address (``https://...``, ``file://...``).
    root : path-like
        Working tree; must be absent, empty, or a clone of `url` from an
        earlier call (any other repository is refused, untouched).
    folders : sequence of str
        Repository-relative folders to check out (cone mode, which also
        brings the files directly inside their parent folders).
    progress : bool, optional
        Pass git's progress output to stderr.

    Returns
    -------
    str
        The commit checked out (for provenance).

    Raises
    ------
    BiosrError
        git missing or failing, no `folders`, or `root` a non-empty folder
        that is not a clone of `url`.
    UnreachableError
        The remote cannot be reached.
    """
    root = Path(root)
    wanted = list(dict.fromkeys(folders))
    if not wanted:
        raise BiosrError(f"{url}: no folders to check out")
    quiet = [] if progress else ["--quiet"]
    git = ["-C", str(root)]
    fresh = not is_clone(root)
    if fresh:
        if root.exists() and any(root.iterdir()):
            raise BiosrError(
                f"{root}: folder is not empty and not a git clone; choose an empty or new "
                "folder for --source git"
            )
        root.parent.mkdir(parents=True, exist_ok=True)
        args = ["clone", "--filter=blob:none", "--depth", "1", "--no-checkout", "--sparse"]
        _run([*args, "--progress" if progress else "--quiet", url, str(root)],
             progress=progress, url=url)  # fmt: skip
        _run([*git, "config", URL_KEY, url])
    else:
        check_clone_of(root, url)
    # trees are local after the clone: name any folder it lacks
    listed = _run([*git, "ls-tree", "-d", "--name-only", "HEAD", "--", *wanted])
    lacking = sorted(set(wanted) - set(listed.split("\n")))
    if lacking:
        raise BiosrError(f"{url}: the repository has no {', '.join(lacking)}")
    have = [] if fresh else _current_folders(root)
    if have is None:  # an earlier full checkout: keep it full, just restore what is asked
        step = wanted
    else:
        step = [f for f in have if f not in wanted]
        for folder in wanted:  # one folder per step: an interruption costs one folder
            step.append(folder)
            _run([*git, "sparse-checkout", "set", "--cone", *step], progress=progress, url=url)
            if fresh or not (root / ".git" / "index").exists():
                _run([*git, "checkout", *quiet], progress=progress, url=url)
                fresh = False
    # restore missing or damaged files of every folder checked out (never outside them)
    _run([*git, "checkout", *quiet, "HEAD", "--", *step], progress=progress, url=url)
    return _run([*git, "rev-parse", "HEAD"]).strip()


def _current_folders(root: Path) -> list[str] | None:
    """Folders of the sparse checkout of a clone; None if it checks out everything."""
    try:
        text = _run(["-C", str(root), "sparse-checkout", "list"])
    except BiosrError:  # sparse checkout not enabled: everything is there already
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


#: First bytes of a Git LFS pointer file (what is checked out without git-lfs).
LFS_POINTER = b"version https://git-lfs"


def check_not_lfs_pointer(path: Path | None, root: str | os.PathLike[str]) -> None:
    """Raise BiosrError if `path` (a checked-out image, or None) is a Git LFS pointer."""
    if path is None:
        return
    with open(path, "rb") as fh:
        if fh.read(len(LFS_POINTER)) == LFS_POINTER:
            raise BiosrError(
                f"{path}: a Git LFS pointer, not the image; install git-lfs "
                f"(https://git-lfs.com) and run `git -C {root} lfs pull`, then `biosr verify`"
            )
