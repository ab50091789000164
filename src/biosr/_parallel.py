"""One process-pool runner for every per-unit job (cells, images): job order, cancel on error.

:class:`concurrent.futures.ProcessPoolExecutor` is the pool; written here once
is the policy that the builder, the simulator, the scorer and the baselines
share: one default worker count (:data:`DEFAULT_WORKERS`), one worker runs
in-process (no pickling, plain tracebacks), small jobs travel in chunks,
progress counts jobs as they complete, results come back in job order (so no
output depends on the worker count or on scheduling), and when a job fails or
the user interrupts, the jobs not yet started are cancelled and the error is
raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from biosr._progress import bar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
R = TypeVar("R")

#: Processes a runner uses unless told otherwise (every ``--workers`` default): one,
#: in-process. ``workers=None`` means every core this process may use.
DEFAULT_WORKERS = 1

#: Chunks per worker when jobs are grouped (:func:`run`'s default `chunksize`): enough
#: to balance uneven jobs, few enough to keep the pickling overhead small.
CHUNKS_PER_WORKER = 8


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int:
    """`workers` as a count: None means :func:`available_cores`.

    Examples
    --------
    >>> resolve_workers(3)
    3
    """
    return available_cores() if workers is None else int(workers)


def _run_chunk(func: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    return [func(job) for job in chunk]


def run(
    func: Callable[[T], R],
    jobs: Sequence[T],
    *,
    workers: int | None = DEFAULT_WORKERS,
    chunksize: int | None = None,
    progress: bool = False,
    desc: str = "",
    unit: str = "job",
) -> list[R]:
    """``[func(job) for job in jobs]``, in a process pool, in job order.

    Parameters
    ----------
    func : callable
        A module-level function (it is pickled to the workers) of one job.
    jobs : sequence
        Picklable jobs, best named (a NamedTuple), not positional tuples.
    workers : int or None, optional
        Processes (default :data:`DEFAULT_WORKERS`); None: every available
        core. One worker, or one job, runs in this process.
    chunksize : int, optional
        Jobs sent to a worker at a time (default: about
        :data:`CHUNKS_PER_WORKER` chunks per worker).
    progress : bool, optional
        Show a bar of completed jobs on stderr, labelled `desc` and `unit`.
    desc, unit : str, optional
        The bar's label and unit.

    Returns
    -------
    list
        ``func(job)`` of every job, in the order of `jobs` whatever the
        order the jobs finished in.

    Raises
    ------
    Exception
        The first error a job raised (in completion order); the jobs not yet
        started are cancelled first, and so they are on an interrupt.

    Examples
    --------
    >>> run(abs, [-2, 1, -3])
    [2, 1, 3]
    """
    jobs = list(jobs)
    workers = min(resolve_workers(workers), len(jobs))
    if workers <= 1:
        return [
            func(job) for job in bar(jobs, enabled=progress, total=len(jobs), desc=desc, unit=unit)
        ]
    from concurrent.futures import ProcessPoolExecutor  # multiprocessing: only when a pool runs

    size = chunksize or max(1, len(jobs) // (workers * CHUNKS_PER_WORKER))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_chunk, func, chunk) for chunk in chunks]
        try:
            ticks = _completed_jobs(futures, [len(c) for c in chunks])
            for _ in bar(ticks, enabled=progress, total=len(jobs), desc=desc, unit=unit):
                pass
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        return [result for future in futures for result in future.result()]


def _completed_jobs(futures: list[Future], sizes: list[int]) -> Iterator[None]:
    """One item per job, as its chunk completes; a failed chunk raises its error."""
    from concurrent.futures import as_completed

    size_of = dict(zip(futures, sizes, strict=True))
    for future in as_completed(futures):
        future.result()
        yield from (None for _ in range(size_of[future]))
