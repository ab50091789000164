"""Bytes transferred by `biosr download --split test` versus a full clone, on a local repo.

Run by hand: ``python benchmarks/bench_download.py [--scale 100] [--dir /tmp/bench_download]``.

Builds (once) a git repository laid out like the published copy, with the
published split proportions divided by ``--scale`` (default 1/100: 410
training and 22 validation pairs, 2 test targets x 9 levels, 884 files of
random float32 128 x 128 TIFFs, which do not compress, so git's packs are
close to the raw bytes). It is served over ``file://`` so that git uses its
real transport (``uploadpack.allowFilter``), then fetched twice into fresh
folders with :func:`biosr.acquire.download.fetch`: ``splits=["test"]`` and all
splits. For each it prints the bytes git received (the packs in
``.git/objects/pack``: a fetch stores them as received), the files checked
out and the wall time. Nothing touches the network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from biosr import layout
from biosr.acquire.download import fetch
from biosr.io.tiff import write_tiff


def make_repo(folder: Path, scale: int) -> str:
    """A file:// repository of random pairs at the published proportions / `scale`."""
    if not (folder / ".git").is_dir():
        base = layout.dataset_dir(folder, must_exist=False)
        rng = np.random.default_rng(0)
        for split in layout.SPLITS:
            n = max(1, round(layout.PUBLISHED_COUNTS[split] / scale))
            for level in layout.split_levels(split):
                for p in layout.pairs(base, split, level, count=n):
                    p.wf.parent.mkdir(parents=True, exist_ok=True)
                    p.gt.parent.mkdir(parents=True, exist_ok=True)
                    write_tiff(p.wf, rng.random((128, 128), dtype=np.float32))
                    if not p.gt.exists():
                        write_tiff(p.gt, rng.random((128, 128), dtype=np.float32))
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b"}
        env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
        for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "data"]):
            subprocess.run(["git", *args], cwd=folder, env=env, check=True)
        subprocess.run(["git", "config", "uploadpack.allowFilter", "true"], cwd=folder, check=True)
    return folder.resolve().as_uri()


def pack_bytes(clone: Path) -> int:
    """Bytes of the packs git received into `clone`."""
    return sum(p.stat().st_size for p in (clone / ".git/objects/pack").glob("*.pack"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100, help="published counts divided by")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_download"))
    args = parser.parse_args()
    url = make_repo(args.dir / f"remote_{args.scale}", args.scale)
    remote = args.dir / f"remote_{args.scale}"
    files = [p for p in remote.rglob("*.tif") if ".git" not in p.parts]
    total = sum(p.stat().st_size for p in files)
    print(f"repository: {len(files):,} files, {total / 2**20:.1f} MiB of TIFFs ({url})")
    results = {}
    for name, splits in (("--split test", ["test"]), ("full clone", None)):
        clone = args.dir / f"clone_{name.strip('-').replace(' ', '_')}"
        shutil.rmtree(clone, ignore_errors=True)
        t0 = time.perf_counter()
        got = fetch(clone, splits=splits, git_url=url)
        wall = time.perf_counter() - t0
        n = sum(1 for p in clone.rglob("*.tif") if ".git" not in p.parts)
        results[name] = received = pack_bytes(clone)
        print(
            f"{name:>13}: {received:>12,} bytes received ({received / 2**20:7.2f} MiB), "
            f"{n:,} files checked out, verify {'OK' if got.report.ok else 'FAILED'}, "
            f"{wall:.1f} s"
        )
    share = results["--split test"] / results["full clone"]
    print(f"--split test transfers {share:.1%} of a full clone's bytes")


if __name__ == "__main__":
    main()
