"""``lava`` backend: Loihi-style CPU emulation of the spiking graph in Lava.

Lava is imported only here and in ``neurons/`` (through ``neurons.lava_compat``), so the other
backends run where it is not installed.  ``floating_pt`` process models run float64;
``fixed_pt`` (``fixed_point=True``) runs integer state and messages on a graph made by
:func:`vistream_neuro.fixed_point.to_fixed_point`.
"""

from __future__ import annotations

import torch

from backends.registry import BackendUnavailableError
from neurons.lava_compat import LavaUnavailableError, import_lava
from vistream_neuro import ir


def lower(graph: ir.SpikingGraph, *, device: torch.device, dtype: torch.dtype, fixed_point: bool = False,
          schedule: str = "timestep", multistep: bool = True):
    """Lava steps every process together: ``multistep`` does not apply."""
    if ir.hysteresis_of(graph):
        raise BackendUnavailableError("--backend lava: the Lava ST-BIF process has no hysteresis yet; "
                                      "use --backend spikingjelly for --hysteresis")
    try:
        import_lava()
    except LavaUnavailableError as exc:
        raise BackendUnavailableError(f"--backend lava: {exc}") from None
    if device.type != "cpu":
        raise BackendUnavailableError(f"--backend lava emulates Loihi on the CPU; --device {device.type} "
                                      "is for the spikingjelly backend")
    from backends.lava.simulator import LavaSimulator

    return LavaSimulator(graph, fixed=fixed_point, schedule=schedule)
