"""Shared by the dataset producers (:mod:`biosr.build.builder`, :mod:`biosr.simulate`): what they own.

Both write the published layout into a ``Microtubules`` folder. What a
producer owns there (and so may remove on overwrite) is one list,
:func:`owned_entries`: the split folders, the manifest, the card and the
builder's work folder. Keeping it in one place means neither producer can
leave the other's state behind (an unfinished build's plan beside simulated
files would otherwise be "resumed"). Also shared: the split folders, the
per-cell seeds and the process pool that runs one job per cell.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TypeVar

import numpy as np

from biosr import layout
from biosr.errors import BiosrError

T = TypeVar("T")
R = TypeVar("R")


def owned_entries() -> tuple[str, ...]:
    """Names, relative to the dataset folder, of everything a producer writes there."""
    roots = tuple(d for split in layout.SPLITS for d in layout.split_roots(split))
    return (*roots, layout.MANIFEST_FILE, layout.CARD_FILE, layout.BUILD_DIR)


def remove_entries(folder: Path, names: Iterable[str]) -> None:
    """Remove the named files or folders of `folder` (a link is removed, not followed)."""
    for name in names:
        target = folder / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def clear_dataset(dataset: Path) -> None:
    """Remove what a producer owns in `dataset` (:func:`owned_entries`) and nothing else."""
    remove_entries(dataset, owned_entries())


def prepare_folder(folder: Path, owned: Iterable[str], *, overwrite: bool) -> None:
    """Create `folder`, refusing a non-empty one unless `overwrite`.

    With `overwrite`, the entries named in `owned` (the writer's own folders
    and files) are removed first, so no stale file of an earlier, larger run
    survives; anything else in the folder is left alone.

    Raises
    ------
    BiosrError
        If `folder` is a file, or is not empty and `overwrite` is False.
    """
    if folder.exists() and not folder.is_dir():
        raise BiosrError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise BiosrError(
                f"{folder}: not empty; choose another output folder or pass --overwrite "
                "(overwrite=True) to replace the data biosr wrote in it"
            )
        remove_entries(folder, owned)
    folder.mkdir(parents=True, exist_ok=True)


def prepare_dataset(dataset: Path, *, overwrite: bool) -> None:
    """:func:`prepare_folder` for a ``Microtubules`` folder and :func:`owned_entries`."""
    prepare_folder(dataset, owned_entries(), overwrite=overwrite)


def make_split_dirs(dataset: Path) -> None:
    """Create every split (and test level) folder of the layout under `dataset`."""
    for split in layout.SPLITS:
        for level in layout.split_levels(split):
            for folder in layout.split_dirs(split, level):
                (dataset / folder).mkdir(parents=True, exist_ok=True)


def cell_seed(seed: int, *key: int) -> np.random.SeedSequence:
    """The SeedSequence of the cell (or other unit of work) at `key` of a run seeded `seed`.

    A unit's random draws depend only on the seed and its key, never on which
    worker runs it or in what order, so outputs are the same for any number
    of workers.
    """
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


def run_jobs(func: Callable[[T], R], jobs: list[T], *, workers: int | None) -> Iterator[R]:
    """Yield ``func(job)`` for each job as it finishes, in a process pool.

    In-process and in order for one worker (or one job); `workers` None means
    all CPUs. On an error (or when the consumer stops), jobs not yet started
    are cancelled and the error is raised.
    """
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield func(job)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = [pool.submit(func, job) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
