"""Loading throughput: per-file TIFFs vs the packed cache, against the memory-copy bound.

Run by hand (it writes ~11 GB under --root and takes a few minutes)::

    python benchmarks/bench_loading.py --root /tmp/biosr_bench

On a published-size training split (41,040 pairs of 128 x 128 float32 random
images, written straight as TIFFs: this measures loading, not content), it
times shuffled batches of 64 with a random symmetry of the square per pair,
from per-file TIFFs and from the packed cache, in the main process and with 2
workers, and prints pairs per second, the speed-up and the fraction of the
memory-copy bound (bytes per pair over the measured NumPy copy bandwidth).
Each setting runs --repeats times (the median is shown, with every run). The
TIFFs, then the pack, are read once before their runs, so both paths are timed
from the page cache (as a second epoch sees them): the figures compare CPU
cost, not the disk.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

#: Pairs per timed batch.
BATCH = 64


def make_split(root: Path, n: int, seed: int) -> Path:
    """Write `n` random training pairs as TIFFs (skipped when already there)."""
    from biosr import layout
    from biosr._progress import bar
    from biosr.io.tiff import write_tiff

    base = layout.dataset_dir(root, must_exist=False)
    pairs = layout.pairs(base, "training", count=n)
    if all(p.gt.exists() for p in (pairs[0], pairs[-1])):
        return base
    for d in layout.split_dirs("training"):
        (base / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    size = layout.PATCH_SIZE
    for p in bar(pairs, enabled=True, total=n, desc="writing TIFFs"):
        write_tiff(p.wf, rng.random((size, size), dtype=np.float32))
        write_tiff(p.gt, rng.random((size, size), dtype=np.float32))
    return base


def warm_page_cache(base: Path, cache: str) -> tuple[float, int]:
    """Read the training split's TIFFs (`cache` "files") or its pack once; (seconds, bytes).

    Each path is timed right after its data was read, from the page cache
    (what a second epoch sees), so the figures compare CPU cost, not the disk.
    """
    from biosr import layout

    if cache == "files":
        folders = [base / d for d in layout.split_dirs("training")]
    else:
        folders = [base / layout.PACK_DIR]
    t0, nbytes = time.perf_counter(), 0
    for folder in folders:
        for entry in os.scandir(folder):
            if cache == "packed" and not entry.name.startswith("training"):
                continue
            with open(entry.path, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    nbytes += len(chunk)
    return time.perf_counter() - t0, nbytes


def copy_bandwidth(nbytes: int = 1 << 28, repeats: int = 5) -> float:
    """Best NumPy copy bandwidth in bytes/s (read + write of `nbytes` counts as `nbytes`)."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return nbytes / best


def throughput(
    root: Path, cache: str, workers: int, max_batches: int, collate: bool, threads: int | None
) -> float:
    """Pairs/s over up to `max_batches` shuffled batches of BATCH (after the first batch).

    `threads` is :class:`biosr.learn.data.BioSR`'s: threads reading a packed batch
    (None: ``torch.get_num_threads()``, which is 1 inside workers).
    """
    import torch
    from torch.utils.data import DataLoader

    from biosr.learn.data import BioSR
    from biosr.learn.data import collate as fast_collate
    from biosr.learn.transforms import Dihedral

    ds = BioSR(root, "training", transforms=Dihedral(), cache=cache, seed=0, threads=threads)
    assert ds.packed == (cache == "packed")
    loader = DataLoader(
        ds,
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        collate_fn=fast_collate if collate else None,
        generator=torch.Generator().manual_seed(0),
    )
    it = iter(loader)
    next(it)  # start-up (workers, first page faults) is not throughput
    pairs, t0 = 0, time.perf_counter()
    for i, batch in enumerate(it):
        pairs += len(batch[0])
        if i + 1 >= max_batches:
            break
    return pairs / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/biosr_bench"))
    parser.add_argument("--pairs", type=int, default=41_040)
    parser.add_argument("--file-batches", type=int, default=40, help="batches timed per file run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting (median shown)")
    args = parser.parse_args()

    from biosr import layout
    from biosr.dataset.pack import pack

    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    t0 = time.perf_counter()
    base = make_split(args.root, args.pairs, args.seed)
    print(f"dataset: {base} ({args.pairs} pairs), ready in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    done = pack(args.root, splits=["training"], progress=True)
    print(
        f"pack: {time.perf_counter() - t0:.1f} s "
        f"({'built' if any(d.rebuilt for d in done) else 'already fresh'})"
    )

    bw = copy_bandwidth()
    pair_bytes = 2 * layout.PATCH_SIZE**2 * layout.DTYPE.itemsize  # WF and GT, as written
    bound = bw / pair_bytes
    print(f"numpy copy bandwidth: {bw / 1e9:.2f} GB/s -> bound {bound:,.0f} pairs/s")

    full = args.pairs // BATCH
    import torch

    runs = [  # cache, workers, batches, biosr collate, reading threads
        ("files", 0, args.file_batches, True, None),
        ("files", 2, args.file_batches, True, None),
        ("packed", 0, full, True, None),
        ("packed", 2, full, True, None),
        ("packed", 0, full, True, 1),
        ("packed", 0, full // 4, False, None),
    ]
    results = {}
    warmed = None
    for cache, workers, batches, collate, threads in runs:
        if cache != warmed:
            seconds, nbytes = warm_page_cache(base, cache)
            print(f"{cache}: {nbytes / 1e9:.1f} GB read into the page cache in {seconds:.1f} s")
            warmed = cache
        rates = [
            throughput(args.root, cache, workers, batches, collate, threads)
            for _ in range(args.repeats)
        ]
        rate = float(np.median(rates))
        if threads is None:
            results[(cache, workers, collate)] = rate
        n = threads or (torch.get_num_threads() if workers == 0 else 1)
        label = (
            f"{cache:6s} workers={workers} threads={n} collate={'biosr' if collate else 'default'}"
        )
        spread = "/".join(f"{r / 1000:.1f}k" for r in rates)
        print(
            f"{label:50s} {rate:10,.0f} pairs/s  ({rate / bound:5.1%} of copy bound; runs {spread})"
        )
    for w in (0, 2):
        ratio = results[("packed", w, True)] / results[("files", w, True)]
        print(f"speed-up packed/files, workers={w}: {ratio:.1f}x")
    best = max(results[("packed", w, True)] for w in (0, 2))
    print(f"best packed: {best:,.0f} pairs/s (target > 30,000 and >= 20x files)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
