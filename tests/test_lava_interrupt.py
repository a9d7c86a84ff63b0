"""Lava releases its processes and shared memory when a run is interrupted: Ctrl-C in a terminal
(SIGINT to the whole process group, Lava's forked processes included) or an error in a run."""

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import requires_lava
from vistream_neuro import ir
from vistream_neuro.backend import lower
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.streaming import run_stream

pytestmark = requires_lava
ROOT = Path(__file__).resolve().parents[1]


def _processes(field: int, value: int) -> list[int]:
    """Live (not zombie) processes whose /proc stat ``field`` (3: parent, 4: process group) is ``value``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z" and int(stat[field - 2]) == value:
            found.append(int(pid))
    return found


def _shared_memory(pids: list[int]) -> set[str]:
    """The /dev/shm segments the processes have mapped."""
    segments = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        segments |= {line.split()[-1] for line in maps.splitlines() if " /dev/shm/" in line}
    return segments


def _wait_for(condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


def test_ctrl_c_mid_run_stops_lava_and_frees_its_shared_memory():
    child = subprocess.Popen([sys.executable, "-m", "tests.lava_stream_until_interrupted"], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    group = child.pid  # its own session and process group, as a terminal's foreground job
    try:
        ready, _, _ = select.select([child.stdout], [], [], 120)
        assert ready and child.stdout.readline() == "running\n", child.stderr.read()
        processes = _processes(4, group)
        segments = _shared_memory(processes)
        assert len(processes) > 3 and segments  # Lava's processes and their channels
        time.sleep(0.5)  # well inside the stream: runs follow each other back to back
        os.killpg(group, signal.SIGINT)
        _, err = child.communicate(timeout=30)  # no hang waiting for killed processes
    finally:
        if child.poll() is None:
            os.killpg(group, signal.SIGKILL)
            child.communicate()
    assert "KeyboardInterrupt" in err and "leaked" not in err, err[-2000:]
    assert _wait_for(lambda: not _processes(4, group), 10), _processes(4, group)
    assert not [s for s in segments if os.path.exists(s)]


def test_an_error_in_a_run_stops_the_runtime():
    """A fault raised from a run (a fixed-point overflow) stops every Lava process of the network,
    though the caller never closes the simulator."""
    graph = ir.SpikingGraph((1, 4, 4), [
        ir.Conv("conv", ir.INPUT, np.full((2, 1, 3, 3), 64.0), padding=(1, 1)),
        ir.Neuron("relu", "conv", np.array(2.0), pos_max=7, payload=np.array(1.0)),
    ], "relu")
    before = set(_processes(3, os.getpid()))
    options = ExecutionOptions(precision="fixed")
    sim = lower(graph, "lava", options)
    frames = [torch.ones(1, 1, 4, 4), torch.full((1, 1, 4, 4), 2.0 ** 20)]
    stream = run_stream(sim, frames, options)
    next(stream)
    # Lava's processes: this one's new children, but for Python's resource tracker (it serves the
    # interpreter until it exits)
    lava = {p for p in set(_processes(3, os.getpid())) - before
            if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()}
    segments = _shared_memory(list(lava))
    assert lava and segments  # the runtime is up
    with pytest.raises(OverflowError, match="relu: input current"):
        next(stream)
    assert _wait_for(lambda: not (set(_processes(3, os.getpid())) & lava), 10)
    assert not [s for s in segments if os.path.exists(s)]
    sim.close()  # and closing again is harmless
