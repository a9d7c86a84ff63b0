"""Reset of a Lava process by one message, shared by the ST-BIF process and the backend's own.

Lava's ``Var.set`` sends an array element by element; clearing a layer's state from the host
would cost one message per neuron.  Processes instead hold an ``epoch`` Var: the host bumps it
(one message), and the process model clears its state at the start of its next step.
"""

from __future__ import annotations

import numpy as np

from neurons.lava_compat import import_lava

import_lava()

from lava.magma.core.model.py.type import LavaPyType  # noqa: E402


class Resettable:
    """Process-model mixin: :meth:`reset_state` runs at the first step (a model's state starts as
    it makes it) and once after each bump of ``epoch``."""

    epoch: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def reset_if_asked(self) -> None:
        if int(self.epoch[0]) != self.__dict__.get("_epoch"):
            self.__dict__["_epoch"] = int(self.epoch[0])
            self.reset_state()

    def reset_state(self) -> None:
        raise NotImplementedError
