"""Where a run's independent jobs (a tracking task's sequences, a sweep's points) execute.

By default, one after the other in this process, with no Ray import.  With ``--workers N`` they run
on N local Ray workers, or with ``--ray-address`` on a running Ray cluster (Ray schedules them onto
its nodes unchanged; one job per GPU when the run uses CUDA).  Either way the results come back in
the jobs' order, so a parallel run's report is the serial run's; a failing job is reported under its
name, and Ctrl-C cancels the jobs still running (docs/ARCHITECTURE.md, "Scale-out").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm


@dataclass(frozen=True)
class Workers:
    """``count``: Ray workers to start here (0: serial in this process).  ``address``: a running Ray
    cluster to join instead (``auto`` or ``host:port``), ``count`` then caps the jobs in flight."""

    count: int = 0
    address: str | None = None
    gpu: bool = False  # each job takes one GPU of the cluster

    @property
    def parallel(self) -> bool:
        return self.count > 0 or self.address is not None


SERIAL = Workers()


class JobFailed(Exception):
    """A job raised: ``name`` says which (a sequence, a sweep point), ``cause`` is what it raised."""

    def __init__(self, name: str, cause: BaseException) -> None:
        super().__init__(f"{name}: {cause}")
        self.name, self.cause = name, cause


@contextmanager
def session(workers: Workers) -> Iterator[None]:
    """Ray started (or joined) for the ``with`` block when ``workers`` is parallel, shut down after."""
    if not workers.parallel:
        yield
        return
    import ray  # only a parallel run imports Ray

    # the workers log to this process's terminal only what they raise; progress comes from here
    env = {"env_vars": {"TQDM_DISABLE": "1"}}
    if workers.address is not None:
        ray.init(address=workers.address, runtime_env=env, log_to_driver=False)
    else:
        gpus = _local_gpus() if workers.gpu else 0
        ray.init(num_cpus=workers.count, num_gpus=gpus, runtime_env=env, include_dashboard=False,
                 log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _local_gpus() -> int:
    return torch.cuda.device_count()


def map_ordered(fn: Callable[[Any, Any], Any], shared: Any, jobs: Sequence[Any], names: Sequence[str],
                workers: Workers, desc: str) -> list[Any]:
    """``[fn(shared, job) for job in jobs]``, serially or on Ray, with one progress bar over the jobs.

    ``shared`` (e.g. the converted network) is shipped to the cluster once.  A job that raises stops
    the run with :class:`JobFailed` naming it (``names[i]`` for ``jobs[i]``).
    """
    if len(names) != len(jobs):
        raise ValueError(f"{len(jobs)} jobs but {len(names)} names")
    if not workers.parallel:
        results = []
        for job, name in tqdm(list(zip(jobs, names, strict=True)), desc=desc, disable=None):
            try:
                results.append(fn(shared, job))
            except Exception as exc:
                raise JobFailed(name, exc) from exc
        return results
    return _map_ray(fn, shared, jobs, names, workers, desc)


def _with_threads(fn: Callable[[Any, Any], Any], threads: int, shared: Any, job: Any) -> Any:
    """``fn(shared, job)`` with torch's intra-op threads as in the driver: how a float convolution
    splits its sums depends on them, so a worker with fewer threads would differ in the last bits."""
    torch.set_num_threads(threads)
    return fn(shared, job)


def _map_ray(fn, shared, jobs, names, workers: Workers, desc: str) -> list[Any]:
    import ray

    if not ray.is_initialized():
        raise RuntimeError("a parallel map needs a Ray session: run it inside workers.session()")
    remote = ray.remote(num_cpus=1, num_gpus=1 if workers.gpu else 0, max_retries=0)(_with_threads)
    shared_ref = ray.put(shared)
    threads = torch.get_num_threads()
    cap = workers.count or len(jobs)
    results: dict[int, Any] = {}
    pending: dict[Any, int] = {}
    queue = list(range(len(jobs)))
    try:
        with tqdm(total=len(jobs), desc=desc, disable=None) as bar:
            while queue or pending:
                while queue and len(pending) < cap:
                    i = queue.pop(0)
                    pending[remote.remote(fn, threads, shared_ref, jobs[i])] = i
                done, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(done[0])
                try:
                    results[i] = ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:
                    raise JobFailed(names[i], exc.cause if exc.cause is not None else exc) from exc
                bar.update()
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [results[i] for i in range(len(jobs))]
