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


def test_readme_structure_table_is_the_layout_table():
    # The README's table of structures says what biosr.layout.STRUCTURES holds, row by row.
    from biosr import layout

    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- structures-table")
    rows = [r for r in text[start:].split("\n\n")[0].splitlines() if r.startswith("| ")][1:]
    rows = [[c.strip() for c in r.strip("|").split("|")] for r in rows if not r.startswith("|--")]
    assert [r[0] for r in rows] == list(layout.STRUCTURES)
    for name, sim, cells, levels, frames, gt, pixel, counts, release in rows:
        s = layout.STRUCTURES[name]
        assert (sim, int(cells), int(levels), int(frames)) == (
            s.modality,
            s.release_cells,
            s.n_levels,
            s.frames,
        )
        assert gt.startswith(f"{s.gt_scale}x ({s.gt_size})")
        assert ("one per level" in gt) == s.gt_per_level
        assert float(pixel) == s.pixel_size_wf_nm
        numbers = [int(v.replace(",", "")) for v in counts.split(" / ")]
        assert numbers == [s.counts[split] for split in layout.SPLITS]
        assert release == f"{s.archive}, {s.archive_bytes / 1e9:.2f} GB"
