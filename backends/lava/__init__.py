"""``lava`` backend: Loihi-style CPU emulation of the spiking graph in Lava.

Lava is imported only here and in ``neurons/`` (through ``neurons.lava_compat``), so the other
backends run where it is not installed.  ``floating_pt`` process models run float64;
``fixed_pt`` (``precision="fixed"``) runs integer state and messages on a graph made by
:func:`vistream_neuro.fixed_point.to_fixed_point`.
"""

from __future__ import annotations

import torch

from neurons.lava_compat import LavaUnavailableError, import_lava
from vistream_neuro import ir
from vistream_neuro.backend import Backend, BackendUnavailableError
from vistream_neuro.options import ExecutionOptions


def _lower(graph: ir.SpikingGraph, options: ExecutionOptions, dtype: torch.dtype):
    """Lava steps every process together (no multi-step path); ``fixed_pt`` for the integer graph."""
    try:
        import_lava()
    except LavaUnavailableError as exc:
        raise BackendUnavailableError(f"backend 'lava': {exc}") from None
    from backends.lava.simulator import LavaSimulator

    return LavaSimulator(graph, fixed=options.integer, schedule=options.schedule)


def _check_run(graph: ir.SpikingGraph, frame_runs: int, force: bool) -> None:
    from backends.lava_estimate import check_lava_run

    check_lava_run(graph, frame_runs, force)


BACKEND = Backend("lava", _lower, devices=("cpu",), hysteresis=False, batch=False, check_run=_check_run)
