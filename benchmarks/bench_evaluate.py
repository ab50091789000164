"""Benchmark: score 1,350 test pairs (150 x 9 levels) with every metric; target < 30 s on 2 cores.

Run by hand: ``python benchmarks/bench_evaluate.py [--workers 2] [--keep DIR]``.
Writes a published-size test split of smooth random images and a prediction
folder (the ``wf`` baseline), then times :func:`biosr.evaluate.evaluation.evaluate`
(tables only, then with plots, montage and HTML). Prints the figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from biosr import layout
from biosr.evaluate.baselines import run_baseline
from biosr.evaluate.evaluation import evaluate
from biosr.io.tiff import write_tiff


def make_test_split(root: Path, n: int, seed: int = 0) -> Path:
    """A test split of `n` smooth random GT images and 9 noisier inputs each."""
    rng = np.random.default_rng(seed)
    base = layout.dataset_dir(root, must_exist=False)
    for index in range(1, n + 1):
        gt = ndimage.gaussian_filter(rng.random((128, 128)), 2.0)
        gt = ((gt - gt.min()) / np.ptp(gt)).astype(np.float32)
        for level in layout.LEVELS:
            p = layout.pair(base, "test", index, level)
            p.wf.parent.mkdir(parents=True, exist_ok=True)
            p.gt.parent.mkdir(parents=True, exist_ok=True)
            noise = rng.standard_normal(gt.shape) / np.sqrt(layout.PHOTONS[level])
            write_tiff(p.wf, (ndimage.gaussian_filter(gt, 2.0) + noise).astype(np.float32))
        write_tiff(p.gt, gt)
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=layout.PUBLISHED_COUNTS["test"])
    parser.add_argument("--keep", type=Path, default=None, help="keep data and report here")
    args = parser.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench_evaluate_"))
    t0 = time.perf_counter()
    make_test_split(tmp / "data", args.images)
    preds = run_baseline("wf", tmp / "data", tmp / "wf", overwrite=True, workers=args.workers)
    print(f"setup: {args.images * 9} pairs written in {time.perf_counter() - t0:.1f} s")
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    for workers in sorted({1, args.workers}):
        t0 = time.perf_counter()
        res = evaluate(tmp / "data", {"wf": preds}, tmp / "report", workers=workers, plots=False)
        dt = time.perf_counter() - t0
        print(
            f"evaluate, {len(res.rows)} pairs, all metrics, workers={workers}: {dt:.1f} s "
            f"({1000 * dt / len(res.rows):.1f} ms/pair)"
        )
    t0 = time.perf_counter()
    evaluate(tmp / "data", {"wf": preds}, tmp / "report", workers=args.workers, plots=True)
    print(
        f"evaluate + plots, montage, HTML, workers={args.workers}: {time.perf_counter() - t0:.1f} s"
    )
    for name in ("rl",):
        t0 = time.perf_counter()
        run_baseline(name, tmp / "data", tmp / name, overwrite=True, workers=args.workers)
        dt = time.perf_counter() - t0
        print(f"baseline {name} (20 iterations), {args.images * 9} images: {dt:.1f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f}; data in {tmp}")


if __name__ == "__main__":
    main()
