"""Time the full published build (41,040 / 2,160 / 150 x 9) from a 55-cell full-size release.

Run by hand: ``python benchmarks/bench_build.py [--dir /tmp/bench_build] [--workers 2]``.
The release (55 cells of 502 px raw frames, 1004 px SIM GT) is written once under
``--dir/release`` by :func:`biosr.simulate.release.simulate_release` when the simulator has it,
else by a quick stand-in here (blurred random lines + Poisson noise; the builder's work
does not depend on the content). Then the build runs into a fresh ``--dir/out`` and
``verify(expect="published", deep=True)`` checks it. Prints wall seconds and peak
memory: the sum of the resident sizes of this process and its workers, sampled
every 0.2 s from /proc, and the largest single process (getrusage).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import threading
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from biosr import layout
from biosr.build.builder import build
from biosr.dataset.verify import verify
from biosr.io.mrc import write_mrc


def stand_in_release(root: Path, cells: int, size: int, seed: int = 0) -> Path:
    """Blurred random lines as raw frames and SIM GT (only if the simulator is missing)."""
    from skimage.draw import line_aa

    folder = root / "Microtubules"
    rng = np.random.default_rng(seed)
    for cell in range(1, cells + 1):
        files = layout.release_files(folder, cell)
        if files["sim_gt"].is_file():
            continue
        files["sim_gt"].parent.mkdir(parents=True, exist_ok=True)
        gt = np.zeros((2 * size, 2 * size))
        for _ in range(60):
            rr, cc, val = line_aa(*(int(v) for v in rng.integers(0, 2 * size, 4)))
            gt[rr, cc] += val
        gt = ndimage.gaussian_filter(gt, 1.0)
        wf = ndimage.gaussian_filter(gt, 3.2).reshape(size, 2, size, 2).mean(axis=(1, 3))
        wf /= wf.max()
        for level in layout.LEVELS:
            lam = wf * layout.PHOTONS[level] + 2.0
            raw = rng.poisson(lam, size=(layout.RAW_FRAMES, size, size)) + layout.CAMERA_OFFSET
            write_mrc(files[f"level_{level:02d}"], raw.astype(np.uint16), voxel_size_nm=62.6)
        write_mrc(files["raw_gt"], raw.astype(np.uint16), voxel_size_nm=62.6)
        write_mrc(files["sim_gt"], (gt * 1000).astype(np.float32), voxel_size_nm=31.3)
    return folder


def make_release(root: Path) -> tuple[Path, str]:
    done = root / "Microtubules" / layout.CELL_DIR.format(cell=layout.RELEASE_CELLS)
    try:
        from biosr.simulate.release import simulate_release
    except ImportError:
        return stand_in_release(root, layout.RELEASE_CELLS, layout.RELEASE_RAW_SIZE), "stand-in"
    if done.is_dir():
        return root / "Microtubules", "biosr.simulate"
    return simulate_release(root, progress=True, overwrite=True, workers=2), "biosr.simulate"


def _tree_rss_kb(pid: int) -> int:
    total = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                total += sum(_tree_rss_kb(int(c)) for c in fh.read().split())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_build"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    release, kind = make_release(args.dir / "release")
    print(f"release ({kind}, 55 cells x 502 px) ready in {time.perf_counter() - t0:.0f} s")
    out = args.dir / "out"
    shutil.rmtree(out, ignore_errors=True)

    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_kb(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    dataset = build(release, out, preset="published", seed=0, workers=args.workers, progress=True)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    largest = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(
        f"build --preset published --workers {args.workers}: {wall:.0f} s wall; peak memory "
        f"{peak[0] / 2**20:.2f} GiB all processes, {largest / 2**20:.2f} GiB largest process"
    )
    t0 = time.perf_counter()
    report = verify(dataset, expect="published", deep=True)
    print(
        f"verify --expect published --deep: ok={report.ok}, {report.files:,} files, "
        f"{len(report.findings)} findings, {time.perf_counter() - t0:.0f} s"
    )
    for finding in report.findings[:10]:
        print(f"  {finding}")
    print(f"load average (shared machine): {os.getloadavg()}")


if __name__ == "__main__":
    main()
