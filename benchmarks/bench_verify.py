"""Time `biosr verify` (default, sampled) and `--deep` on a 10,000-pair training copy.

Run by hand: ``python benchmarks/bench_verify.py [--pairs 10000] [--dir /tmp/bench_verify]``.
The copy is written once (hard links to one pair, so it costs little disk and time) and
reused. Prints wall seconds for each mode.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from biosr import layout
from biosr.dataset.verify import verify
from biosr.io.tiff import write_tiff


def make_copy(root: Path, pairs: int) -> Path:
    """A training split of `pairs` distinct files (copies of 16 random images)."""
    base = layout.dataset_dir(root, must_exist=False)
    wf_dir, gt_dir = (base / d for d in layout.split_dirs("training"))
    if wf_dir.is_dir() and len(os.listdir(wf_dir)) == pairs:
        return base
    wf_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    blobs = []
    for k in range(16):
        write_tiff(wf_dir / f".seed{k}", rng.random((128, 128), dtype=np.float32))
        blobs.append((wf_dir / f".seed{k}").read_bytes())
        (wf_dir / f".seed{k}").unlink()
    for p in layout.pairs(base, "training", count=pairs):
        p.wf.write_bytes(blobs[p.index % 16])
        p.gt.write_bytes(blobs[(p.index + 7) % 16])
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_verify"))
    args = parser.parse_args()
    make_copy(args.dir, args.pairs)
    for deep in (False, True):
        # drop nothing from the page cache: this is the warm-cache figure
        t0 = time.perf_counter()
        report = verify(args.dir, splits=["training"], deep=deep)
        dt = time.perf_counter() - t0
        mode = "--deep" if deep else "default (sampled)"
        print(
            f"verify {mode:18s}: {args.pairs:,} pairs, {report.files:,} files, "
            f"{report.decoded:,} decoded in {dt:.2f} s ({report.files / dt:,.0f} files/s); "
            f"ok={report.ok}"
        )


if __name__ == "__main__":
    main()
