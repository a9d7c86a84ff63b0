"""The one recipe for the graph that actually runs: QANN graph -> (integer graph -> bias
correction) -> hysteresis; and beside it the sigma-delta baseline.

Every caller (the runner, the public API, benchmarks, exports) gets its deployed graph here, so a
run and its reference always execute the same numbers (docs/ARCHITECTURE.md, "Deployment").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vistream_neuro import ir
from vistream_neuro.fixed_point import FixedPointGraph, correct_bias, exact_dtype, to_fixed_point
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import Converted
from vistream_neuro.sigma_delta import to_sigma_delta


@dataclass(frozen=True, eq=False)
class Deployment:
    """The graph that runs, and how float network inputs enter it and its outputs leave it:
    identity for a float graph, the integer units of a fixed-point one."""

    graph: ir.SpikingGraph
    fixed: FixedPointGraph | None = None

    @property
    def integer(self) -> bool:
        return self.fixed is not None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.fixed is None else self.fixed.encode(x)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.fixed is None else self.fixed.decode(y)

    def dtype(self, options: ExecutionOptions, encoded: list[torch.Tensor]) -> torch.dtype:
        """The dtype to run in: the options' float dtype for a float graph; for the integer graph
        float32 unless a sum could reach 2^24 (then float64, still exact), given the encoded frames
        (a frame difference is bounded by twice a frame)."""
        if self.fixed is None:
            return options.float_dtype
        return exact_dtype(self.graph, 2 * max(float(x.abs().max()) for x in encoded))


def integer_graph(net: Converted, **options) -> FixedPointGraph:
    """The integer graph of a converted network on its input grid (``net.input_unit``), biases
    corrected on its calibration frames against the float QANN (``options``: those of
    :func:`vistream_neuro.fixed_point.to_fixed_point`)."""
    return correct_bias(to_fixed_point(net.graph, net.input_unit, **options), net.graph, net.frames)


def deploy(net: Converted, options: ExecutionOptions) -> Deployment:
    """The graph ``options`` run: the integer graph with ``precision="fixed"``, else the float graph;
    with the options' hysteresis on every ST-BIF neuron."""
    if options.integer:
        fixed = integer_graph(net)
        graph = ir.with_hysteresis(fixed.graph, options.hysteresis) if options.hysteresis else fixed.graph
        return Deployment(graph, FixedPointGraph(graph, fixed.input_unit, fixed.output_unit, fixed.units))
    graph = ir.with_hysteresis(net.graph, options.hysteresis) if options.hysteresis else net.graph
    return Deployment(graph)


def sigma_delta(net: Converted, threshold_factor: float) -> Deployment:
    """The sigma-delta baseline: the float graph with Lava-style sigma-delta neurons (threshold =
    ``threshold_factor`` x each layer's scale); it has no QANN to equal and runs on float frames."""
    return Deployment(to_sigma_delta(net.graph, threshold_factor))


def input_band(net: Converted, levels: int) -> torch.Tensor:
    """The dead band of a change-detecting input of ``levels`` 8-bit steps, per input channel, half a
    step wide of the band so that values on the 8-bit grid compare safely."""
    unit = np.asarray(net.input_unit, dtype=np.float64)
    return (levels + 0.5) * torch.as_tensor(unit).reshape(-1, 1, 1)
