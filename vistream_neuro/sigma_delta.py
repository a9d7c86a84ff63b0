"""The sigma-delta baseline: a converted graph with its ST-BIF neurons replaced by Lava's
sigma-delta neurons (ReLU where the quantiser was unsigned, the identity where it was signed).

The threshold comes from the layer's scale (``threshold_factor * scale``).  The network then
approximates the float ANN (no quantiser, no upper bound: ReLU6 layers lose their cap) within the
residues the thresholds leave, so its accuracy is reported next to its cost, not assumed.
"""

from __future__ import annotations

import numpy as np

from vistream_neuro import ir


def to_sigma_delta(graph: ir.SpikingGraph, threshold_factor: float = 1.0) -> ir.SpikingGraph:
    """The same graph with every :class:`ir.Neuron` turned into an :class:`ir.SigmaDelta`."""
    if not (np.isfinite(threshold_factor) and threshold_factor >= 0):
        raise ValueError(f"threshold_factor must be finite and >= 0, got {threshold_factor!r}")
    nodes = []
    for node in graph.nodes:
        if isinstance(node, ir.Neuron):
            if node.payload is not None and not np.array_equal(node.payload, node.scale):
                raise ir.GraphError(f"{node.name}: a fixed-point neuron (payload != scale) has no "
                                    "sigma-delta form; convert the float graph")
            node = ir.SigmaDelta(node.name, node.input, np.asarray(node.scale, dtype=np.float64)
                                 * float(threshold_factor), relu=node.neg_min == 0)
        nodes.append(node)
    return ir.SpikingGraph(graph.input_shape, nodes, graph.output)
