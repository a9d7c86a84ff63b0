"""Backends: what each one supports, and how the library finds them without importing them.

A backend lowers the spiking graph to a :class:`vistream_neuro.simulator.Simulator`.  Backends
live above the library (``backends/``, or any installed package) and register a :class:`Backend`
under the entry-point group ``vistream_neuro.backends`` (see pyproject.toml), so the library reads
them by name while never importing a backend module itself (docs/ARCHITECTURE.md, "Layers").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import torch

from vistream_neuro import ir
from vistream_neuro.options import SCHEDULES, ExecutionOptions, OptionsError
from vistream_neuro.simulator import Simulator

ENTRY_POINTS = "vistream_neuro.backends"

Lowering = Callable[[ir.SpikingGraph, ExecutionOptions, torch.dtype], Simulator]


class UnknownBackendError(ValueError):
    def __init__(self, name: str, known: list[str]) -> None:
        hint = ", ".join(known) if known else "none registered (is the package installed? pip install -e .)"
        super().__init__(f"unknown backend {name!r}; valid backends: {hint}")


class BackendUnavailableError(RuntimeError):
    """The backend's framework is missing or cannot run this graph here."""


class UnsupportedOptionsError(ValueError):
    """The backend cannot execute the requested combination of options."""


@dataclass(frozen=True)
class Backend:
    """A backend and what it supports.  ``lower(graph, options, dtype)`` builds its simulator;
    ``check_run(graph, frame_runs, force)``, if given, refuses runs it would take impractically
    long to finish (raising :class:`BackendUnavailableError`)."""

    name: str
    lower: Lowering
    devices: tuple[str, ...] = ("cpu",)
    schedules: tuple[str, ...] = SCHEDULES
    hysteresis: bool = False
    batch: bool = True  # several streams at once (a batch dimension)
    check_run: Callable[[ir.SpikingGraph, int, bool], None] | None = None

    def check(self, options: ExecutionOptions, batch: int = 1) -> None:
        """Refuse, in one message, what this backend cannot run."""
        problems = []
        if options.device not in self.devices:
            problems.append(f"device {options.device!r} (it runs on {', '.join(self.devices)})")
        if options.schedule not in self.schedules:
            problems.append(f"schedule {options.schedule!r} (it runs {', '.join(self.schedules)})")
        if options.hysteresis and not self.hysteresis:
            problems.append("hysteresis (its neurons have none)")
        if batch > 1 and not self.batch:
            problems.append(f"a batch of {batch} streams (it simulates one)")
        if problems:
            raise UnsupportedOptionsError(f"backend {self.name!r} does not support {'; '.join(problems)}")


def registered() -> dict[str, metadata.EntryPoint]:
    """The registered backends by name (nothing imported yet)."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINTS)}


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``; a missing framework is a :class:`BackendUnavailableError`
    naming it."""
    points = registered()
    if name not in points:
        raise UnknownBackendError(name, sorted(points))
    try:
        backend = points[name].load()
    except ImportError as exc:
        raise BackendUnavailableError(f"backend {name!r} cannot be loaded here: {exc}") from None
    if not isinstance(backend, Backend):
        raise BackendUnavailableError(f"backend {name!r}: entry point {points[name].value} is not a Backend")
    return backend


def lower(graph: ir.SpikingGraph, backend: str | Backend, options: ExecutionOptions | None = None,
          dtype: torch.dtype | None = None, batch: int = 1) -> Simulator:
    """A simulator of ``graph`` on ``backend`` (a name or a :class:`Backend`), checked against
    ``options`` first (default: float64, the options' other defaults); ``dtype`` defaults to the
    options' float dtype.  ``precision="fixed"`` tells backends with an integer mode (Lava's
    ``fixed_pt``) that ``graph`` is an integer graph; the others are exact on it in any case."""
    options = options or ExecutionOptions(precision="float64")
    if ir.hysteresis_of(graph) != options.hysteresis:
        raise OptionsError(f"the graph's neurons have hysteresis {ir.hysteresis_of(graph)}, the options "
                           f"{options.hysteresis}: deploy the graph with these options")
    backend = backend if isinstance(backend, Backend) else get_backend(backend)
    backend.check(options, batch)
    return backend.lower(graph, options, dtype or options.float_dtype)
