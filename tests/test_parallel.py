"""biosr._parallel.run: results in job order for any worker count, errors cancel, progress."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import pytest

from biosr import _parallel


class Job(NamedTuple):
    index: int
    delay: float
    folder: str = ""


def _square(job: Job) -> int:
    time.sleep(job.delay)
    return job.index * job.index


def _fail_first(job: Job) -> int:
    if job.index == 0:
        raise ValueError("job 0 failed")
    time.sleep(job.delay)
    Path(job.folder, f"{job.index}.done").touch()
    return job.index


@pytest.mark.parametrize("workers", [1, 2, None])
def test_results_come_in_job_order_whatever_finishes_first(workers) -> None:
    # early jobs sleep longest, so in a pool they finish last
    jobs = [Job(i, 0.05 * (5 - i)) for i in range(6)]
    assert _parallel.run(_square, jobs, workers=workers, chunksize=1) == [i * i for i in range(6)]


def test_chunks_keep_order_and_count_every_job() -> None:
    jobs = [Job(i, 0.0) for i in range(37)]
    assert _parallel.run(_square, jobs, workers=2, chunksize=5) == [i * i for i in range(37)]
    assert _parallel.run(_square, jobs, workers=2) == [i * i for i in range(37)]
    assert _parallel.run(_square, [], workers=2) == []


def test_an_error_is_raised_and_cancels_jobs_not_started(tmp_path: Path) -> None:
    jobs = [Job(i, 0.2, str(tmp_path)) for i in range(12)]
    with pytest.raises(ValueError, match="job 0 failed"):
        _parallel.run(_fail_first, jobs, workers=2, chunksize=1)
    done = len(list(tmp_path.glob("*.done")))
    assert done < len(jobs) - 1, f"{done} jobs ran after the failure; pending ones are cancelled"


def test_one_worker_runs_in_process_with_plain_tracebacks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="job 0 failed"):
        _parallel.run(_fail_first, [Job(1, 0.0, str(tmp_path)), Job(0, 0.0)], workers=1)
    assert (tmp_path / "1.done").is_file()  # in order: job 1 ran before job 0 failed


def test_workers_resolve_to_a_count() -> None:
    assert _parallel.resolve_workers(None) == _parallel.available_cores() >= 1
    assert _parallel.resolve_workers(3) == 3
