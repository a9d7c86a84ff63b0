"""Backend names -> lowering functions, imported only when asked for."""

from __future__ import annotations

import importlib

import torch

from vistream_neuro.ir import SpikingGraph
from vistream_neuro.simulator import Simulator

BACKENDS: dict[str, str] = {
    "torch": "backends.torch_backend",
    "spikingjelly": "backends.spikingjelly_backend",
    "lava": "backends.lava",
}


class UnknownBackendError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")


class BackendUnavailableError(RuntimeError):
    """The backend's framework is missing or cannot run this graph here."""


def lower(
    graph: SpikingGraph,
    backend: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    fixed_point: bool = False,
    schedule: str = "timestep",
    multistep: bool = True,
) -> Simulator:
    """Build a simulator of ``graph`` on ``backend`` (``torch`` is the dense QANN reference).

    ``fixed_point``: ``graph`` is integer-valued (``vistream_neuro.fixed_point``); backends with
    an integer mode (Lava ``fixed_pt``) use it, the others are exact on such graphs anyway.
    ``schedule``: ``timestep`` or ``layerwise`` (see the spikingjelly backend); the dense
    reference settles at once under either.  ``multistep``: backends with a multi-step path
    (spikingjelly) run the ``timestep`` schedule a chunk of steps at a time; False steps one at a
    time (the plain path the fast one is tested against).
    """
    if backend not in BACKENDS:
        raise UnknownBackendError(backend)
    module = importlib.import_module(BACKENDS[backend])
    return module.lower(graph, device=torch.device(device), dtype=dtype, fixed_point=fixed_point,
                        schedule=schedule, multistep=multistep)
