"""Shared fixtures: hand-made tiny datasets and the location of ../shared."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from biosr import layout
from biosr.io.tiff import write_tiff

#: ../shared beside the project root (absent in a plain clone).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_MRC = SHARED / "fixtures" / "real" / "rDL-SIM_Microtubules_MT.mrc"


def tree_digest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file below `folder` (for bit-identity checks)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def make_dataset(
    root: Path,
    counts: dict[str, int] | None = None,
    *,
    gt_scale: int = 1,
    seed: int = 0,
    size: int = layout.PATCH_SIZE,
) -> Path:
    """Write a tiny dataset of random float32 pairs under `root`; return its Microtubules folder.

    `counts` maps split to pairs (test: per level); default 3 / 2 / 2.
    """
    counts = counts or {"training": 3, "validate": 2, "test": 2}
    rng = np.random.default_rng(seed)
    base = layout.dataset_dir(root, must_exist=False)
    for split, n in counts.items():
        written_gt = False
        for lev in layout.split_levels(split):
            for p in layout.pairs(base, split, lev, count=n):
                p.wf.parent.mkdir(parents=True, exist_ok=True)
                p.gt.parent.mkdir(parents=True, exist_ok=True)
                write_tiff(p.wf, rng.random((size, size), dtype=np.float32))
                if not written_gt or split != "test" or not p.gt.exists():
                    gt = rng.random((size * gt_scale, size * gt_scale), dtype=np.float32)
                    write_tiff(p.gt, gt)
            written_gt = True
    return base


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """A hand-made dataset (3 training, 2 validate, 2 test pairs per level); returns the root."""
    make_dataset(tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def real_mrc() -> Path:
    """The real raw SIM stack in ../shared/fixtures/real (skips when ../shared is absent)."""
    if not REAL_MRC.is_file():
        pytest.skip(f"real BioSR-format fixture not found at {REAL_MRC} (../shared is absent)")
    return REAL_MRC
