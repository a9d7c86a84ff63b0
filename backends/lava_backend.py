"""``lava`` backend: Loihi-style CPU emulation of the spiking graph in Lava.

Lava is imported only here (through ``neurons.lava_compat``), so the other backends run where it
is not installed.
"""

from __future__ import annotations

import torch

from backends.registry import BackendUnavailableError
from neurons.lava_compat import LavaUnavailableError, import_lava
from vistream_neuro import ir


def lower(graph: ir.SpikingGraph, *, device: torch.device, dtype: torch.dtype):
    try:
        import_lava()
    except LavaUnavailableError as exc:
        raise BackendUnavailableError(f"--backend lava: {exc}") from None
    raise BackendUnavailableError(
        "--backend lava: the ST-BIF Lava process and the lowering of the spiking graph to Lava "
        "are not built yet (issue 5); use --backend spikingjelly or torch"
    )
