"""Benchmark: one 502 x 502 x 9 raw SIM stack reconstructed (estimation included) on one core.

Run by hand: ``.venv/bin/python benchmarks/bench_reconstruct.py``; prints the
median of 5 runs (target: under 2 s). The stack is synthetic (random points,
a known pattern, Poisson noise), so it needs no data; threads are held to one
for FFTs (``workers=1`` throughout) and BLAS.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from biosr import layout, optics  # noqa: E402
from biosr.reconstruct.wiener import reconstruct_sim  # noqa: E402

N = layout.RELEASE_RAW_SIZE


def stack(seed: int = 0) -> np.ndarray:
    """A (9, 502, 502) stack: random points, 180 nm pattern at 85/145/205 deg, m = 0.8."""
    rng = np.random.default_rng(seed)
    fine = 2 * N
    spec = np.zeros((fine, fine))
    pts = rng.integers(0, fine, (20_000, 2))
    spec[pts[:, 0], pts[:, 1]] = rng.random(len(pts))
    x = (np.arange(fine) / 2.0 - 0.25) * layout.PIXEL_SIZE_WF_NM
    h = optics.otf((fine, fine), layout.PIXEL_SIZE_GT_NM, kind="measured")
    frames = []
    for angle in (85.0, 145.0, 205.0):
        ky, kx = math.sin(math.radians(angle)) / 180.0, math.cos(math.radians(angle)) / 180.0
        for phase in (0.0, 2.0 * np.pi / 3.0, 4.0 * np.pi / 3.0):
            illum = 1.0 + 0.8 * np.cos(2 * np.pi * (ky * x[:, None] + kx * x[None, :]) + phase)
            frames.append(np.fft.ifft2(np.fft.fft2(spec * illum) * h).real)
    raw = np.stack(frames).reshape(9, N, 2, N, 2).sum(axis=(2, 4))
    raw = rng.poisson(np.maximum(raw, 0) * 500.0 / raw.max()) + 100.0
    return raw.astype(np.uint16)


def main() -> None:
    raw = stack()
    reconstruct_sim(raw)  # warm-up: caches, page faults
    times = []
    for _ in range(5):
        t = time.perf_counter()
        image, params = reconstruct_sim(raw)
        times.append(time.perf_counter() - t)
    print(
        f"reconstruct 502 x 502 x 9 -> {image.shape[0]} x {image.shape[1]}, one core: "
        f"median {statistics.median(times):.2f} s (min {min(times):.2f} s) over 5 runs; "
        f"periods {', '.join(f'{p:.1f}' for p in params.period_nm)} nm"
    )


if __name__ == "__main__":
    main()
