"""Lava process models that compute with torch (the ST-BIF reference, exact convolutions)."""

from __future__ import annotations

import torch

from neurons.lava_compat import import_lava

import_lava()

from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402


class TorchInProcess(PyLoihiProcessModel):
    """A process model that calls torch ops.  Lava forks its processes; a forked child whose
    parent already ran torch's intra-op thread pool hangs in its first parallel op, so the
    child keeps to one thread (Lava runs one OS process per Lava process anyway)."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        torch.set_num_threads(1)
