"""Memory stays flat over a long stream: what the library and the SpikingJelly backend hold (the
simulator, its neurons and caches, the op counter) does not grow with the frames.  The caller here
keeps nothing of the per-frame results, so any growth would be theirs.

Measured with the tiny model on 16x16 and 32x32 frames: Python allocations (tracemalloc) and resident
memory flat to a few bytes per frame over thousands of frames, in both schedules and modes.
"""

import gc
import os
import tracemalloc

import pytest
import torch

from evals.data.synthetic import synthetic_video
from vistream_neuro import pipeline
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import lower
from vistream_neuro.fixed_point import to_fixed_point
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.streaming import run_stream

TRACED_SLACK = 16 * 1024  # bytes: a leak of 16 B per frame over the second half shows
RSS_SLACK = 8 * 2**20  # bytes: the allocator's own steps; a leak of ~5 KB per frame shows


@pytest.fixture(scope="module")
def integer_tiny():
    """The tiny model's integer graph and 200 frames of synthetic video (16x16), on one thread:
    small tensors run fastest so, loaded machine or not."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    video = torch.from_numpy(synthetic_video(200, 16, 16, seed=1)).double()
    fx = to_fixed_point(pipeline.convert_model("tiny", video[:32], 4).graph, pipeline.pixel_unit("tiny"))
    yield fx, [fx.encode(f[None]).float() for f in video]
    torch.set_num_threads(threads)


def _back_and_forth(frames: list[torch.Tensor], n: int):
    """``n`` frames: the clip forwards, backwards, forwards... (no jump where it turns)."""
    period = 2 * len(frames) - 2
    for i in range(n):
        k = i % period
        yield frames[k if k < len(frames) else period - k]


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("schedule,mode,frames", [("timestep", "locc", 1500), ("layerwise", "locc", 3000),
                                                  ("layerwise", "reset", 2000)])
def test_library_memory_stays_flat_over_a_long_stream(integer_tiny, schedule, mode, frames):
    fx, clip = integer_tiny
    options = ExecutionOptions(precision="fixed", mode=mode, schedule=schedule)
    sim = lower(fx.graph, "spikingjelly", options, torch.float32)
    counter = OpCounter(fx.graph, options)
    half = frames // 2
    marks = {}
    tracemalloc.start()
    try:
        for result in run_stream(sim, _back_and_forth(clip, frames), options, counter):
            assert result.converged
            if result.index + 1 in (half // 2, half, frames):  # settle in, first half, second half
                gc.collect()
                marks[result.index + 1] = (tracemalloc.get_traced_memory(), _resident())
                tracemalloc.reset_peak()
    finally:
        tracemalloc.stop()
    ((_, first_peak), first_rss), ((last, last_peak), last_rss) = marks[half], marks[frames]
    assert last_peak <= first_peak + TRACED_SLACK, (first_peak, last_peak)
    assert last <= marks[half][0][0] + TRACED_SLACK, (marks[half][0][0], last)
    assert last_rss <= first_rss + RSS_SLACK, (first_rss, last_rss)
