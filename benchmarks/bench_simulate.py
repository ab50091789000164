"""Time the simulator: the ``published`` patches preset and a full-size 55-cell raw release.

Run by hand (it writes about 5.7 GB under a temporary folder and deletes it)::

    python benchmarks/bench_simulate.py [--out /tmp/bench] [--workers N] [--only patches|raw]

Targets: each under 10 minutes on 2 cores. Prints wall time, pairs (or cells)
per second and the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from biosr import layout
from biosr.simulate import PRESETS, simulate_patches, simulate_release


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="scratch folder (default: a temp)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    parser.add_argument("--only", choices=("patches", "raw"), default=None)
    args = parser.parse_args()
    scratch = Path(args.out or tempfile.mkdtemp(prefix="biosr-bench-"))
    print(f"cpus {os.cpu_count()}, load before {os.getloadavg()}")
    try:
        if args.only in (None, "patches"):
            counts = PRESETS["published"].counts()
            pairs = counts["training"] + counts["validate"] + counts["test"] * len(layout.LEVELS)
            t = time.perf_counter()
            simulate_patches(scratch / "patches", preset="published", workers=args.workers)
            dt = time.perf_counter() - t
            print(f"patches published: {pairs} pairs in {dt:.1f} s = {pairs / dt:.1f} pairs/s")
            shutil.rmtree(scratch / "patches")
        if args.only in (None, "raw"):
            t = time.perf_counter()
            simulate_release(scratch / "raw", workers=args.workers)
            dt = time.perf_counter() - t
            cells = layout.RELEASE_CELLS
            print(
                f"raw release: {cells} cells of {layout.RELEASE_RAW_SIZE} px in {dt:.1f} s "
                f"= {cells / dt:.2f} cells/s"
            )
            shutil.rmtree(scratch / "raw")
    finally:
        if args.out is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
