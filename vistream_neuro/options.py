"""How a spiking network is executed: one options object, built and validated once.

The simulator, the operation counter and the streaming driver all read the same
:class:`ExecutionOptions`; each backend declares which of them it supports
(:class:`vistream_neuro.backend.Backend`), and an unsupported combination is refused there, in one
place.  Semantics of the modes and schedules: docs/ARCHITECTURE.md, "Execution".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PRECISIONS = ("fixed", "float64", "float32")
MODES = ("locc", "reset")
SCHEDULES = ("timestep", "layerwise")
ENCODINGS = ("ternary", "graded")
DEVICES = ("cpu", "cuda")
QUIESCENCE = ("spikes", "vistream")


class OptionsError(ValueError):
    """An execution option is unknown or contradicts another one."""


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise OptionsError(f"{name} {value!r}: valid values are {', '.join(valid)}")


@dataclass(frozen=True)
class ExecutionOptions:
    """``precision``: ``fixed`` runs the integer graph (float32 where its sums provably stay below
    2^24, else float64), ``float64`` / ``float32`` the float graph.  ``mode``: ``locc`` (never reset,
    frame differences in) or ``reset`` (every frame from a fresh state).  ``schedule``: ``timestep``
    (every layer advances one step together) or ``layerwise`` (each layer takes all its input, then
    fires until quiet).  ``spikes``: ``ternary`` counts one event per quantum, ``graded`` one per
    message.  ``hysteresis``: steps beyond its rounding band a level's input must move before it
    changes (layer-wise LoCC only).  ``t_max``: steps after which an unsettled frame is given up.
    ``quiescence``: when a frame ends: ``spikes`` at the first step in which no
    neuron spikes; ``vistream`` (ViStream's ``Judger``) at the first step in which no neuron spikes
    *and* none received input, one zero-input step later on a frame whose input changed but made
    nothing fire.  ``multistep``: backends with a multi-step path take the timestep schedule a
    chunk of steps at a time (same results; False steps one at a time).  ``force``: run even where
    a backend estimates the run to be impractically long."""

    precision: str = "fixed"
    mode: str = "locc"
    schedule: str = "timestep"
    spikes: str = "ternary"
    hysteresis: float = 0.0
    t_max: int = 512
    device: str = "cpu"
    multistep: bool = True
    force: bool = False
    quiescence: str = "spikes"

    def __post_init__(self) -> None:
        _choice("precision", self.precision, PRECISIONS)
        _choice("mode", self.mode, MODES)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("spikes", self.spikes, ENCODINGS)
        _choice("device", self.device, DEVICES)
        _choice("quiescence", self.quiescence, QUIESCENCE)
        if isinstance(self.t_max, bool) or not isinstance(self.t_max, int) or self.t_max < 1:
            raise OptionsError(f"t_max must be an integer >= 1, got {self.t_max!r}")
        if self.spikes == "graded" and self.schedule != "layerwise":
            raise OptionsError("spikes 'graded' needs schedule 'layerwise' (a timestep message holds one "
                               "quantum)")
        if not 0 <= self.hysteresis < 1:
            raise OptionsError(f"hysteresis must be in [0, 1) steps, got {self.hysteresis}")
        if self.hysteresis and (self.schedule, self.mode) != ("layerwise", "locc"):
            raise OptionsError(f"hysteresis runs in the layerwise schedule and locc mode only, not "
                               f"{self.schedule} / {self.mode}: stepped, or reset every frame, a level with "
                               "memory cannot follow its own past")

    @property
    def integer(self) -> bool:
        """Whether the integer (fixed-point) graph runs."""
        return self.precision == "fixed"

    @property
    def float_dtype(self) -> torch.dtype:
        """The dtype of a float-graph run (``fixed`` picks its own: see
        :func:`vistream_neuro.fixed_point.exact_dtype`)."""
        return torch.float64 if self.precision == "float64" else torch.float32
