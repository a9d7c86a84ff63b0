"""Export to NIR (the Neuromorphic Intermediate Representation, version 1.0), where NIR has the
node types; a graph with nodes it has not is refused, naming each node and what NIR lacks.

NIR 1.0 expresses the linear part of a converted network (``Conv2d``, ``Affine``/``Linear``,
``Flatten``, ``AvgPool2d``; an add is several edges into one node) but none of its neurons: its
spiking neurons (``IF``, ``LIF``, ``CubaLIF``) send unary spikes and reset to ``v_reset``, while an
ST-BIF neuron sends signed spikes, takes spikes back, keeps its residual and bounds its count; it
has no graded (sigma-delta) neuron and no max pooling.  Writing an approximation would give a file
that looks like the network and computes something else, so nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from vistream_neuro import ir

NIR_NODES = {ir.Conv: "Conv2d", ir.Linear: "Affine", ir.Flatten: "Flatten", ir.AvgPool: "AvgPool2d",
             ir.Add: "edges summed at their target"}
MISSING = {
    ir.Neuron: "ST-BIF neuron (signed spikes, bounded count, residual kept): NIR 1.0's IF/LIF/CubaLIF "
               "send unary spikes and reset to v_reset",
    ir.SigmaDelta: "sigma-delta neuron (graded spikes): NIR 1.0 has no graded-spike neuron",
    ir.MaxPool: "max pooling: NIR 1.0 has AvgPool2d and SumPool2d only",
}


class NIRExportError(ir.GraphError):
    """The graph holds nodes NIR cannot express (the message lists them)."""


def nir_blockers(graph: ir.SpikingGraph) -> dict[str, list[str]]:
    """Per kind of node NIR 1.0 cannot express (what it lacks), the names of those nodes."""
    blockers: dict[str, list[str]] = {}
    for node in graph.nodes:
        if type(node) in MISSING:
            blockers.setdefault(MISSING[type(node)], []).append(node.name)
    return blockers


def export_nir(graph: ir.SpikingGraph, path: str | Path) -> None:
    """Refuse, listing the nodes NIR lacks; a graph without any such node has no neurons either,
    so it is no spiking network to exchange."""
    blockers = nir_blockers(graph)
    if blockers:
        listed = "; ".join(f"{what} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                           for what, names in blockers.items())
        raise NIRExportError(f"{path}: not written, NIR 1.0 cannot express: {listed}")
    raise NIRExportError(f"{path}: not written, the graph has no neurons (only "
                         f"{', '.join(sorted({NIR_NODES[type(n)] for n in graph.nodes}))})")
