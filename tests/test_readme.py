"""The README's Python examples run as written, in order, on small local data.

Each ```python block of README.md runs in one namespace (a later block may use
what an earlier one made), in a fresh folder holding what the text assumes a
reader has: ``ROOT``, a small dataset copy, and a git mirror of the published
repository on this machine (``BIOSR_GIT_URL``), so the download example fetches
without the internet. The network is blocked for the whole run.
"""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import pytest

from conftest import make_dataset

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_examples():
    assert len(blocks()) >= 5


@pytest.mark.skipif(shutil.which("git") is None, reason="system git not installed")
def test_readme_examples_run_as_written(tmp_path, monkeypatch):
    from test_download_git import make_repo

    def refuse(*args, **kwargs):
        raise OSError("network blocked in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("BIOSR_GIT_URL", make_repo(tmp_path / "mirror"))
    work = tmp_path / "work"
    make_dataset(work / "ROOT")
    monkeypatch.chdir(work)
    namespace: dict = {"__name__": "readme"}
    for number, code in enumerate(blocks(), start=1):
        try:
            exec(compile(code, f"README.md python block {number}", "exec"), namespace)
        except Exception as exc:  # name the block: the traceback alone points at exec
            raise AssertionError(f"README python block {number} failed: {exc!r}\n{code}") from exc
