"""How long a Lava CPU emulation of a graph would take, from the graph alone (no Lava import).

Lava runs one OS process per Lava process and synchronises them every step; on this project's
2-core machines one step cost about 0.6 ms per process plus the dense work of every synaptic layer
(Lava's processes do not skip silent inputs): tiny 48x64, 15 processes, 9 ms/step; MobileNetV2
64x32, 110 processes, 89 ms/step (``make bench``, ``bench_results/lava.json``).
"""

from __future__ import annotations

from vistream_neuro import ir
from vistream_neuro.accounting import dense_macs
from vistream_neuro.backend import BackendUnavailableError

MS_PER_PROCESS, MS_PER_MAC = 0.6, 2e-6
STEPS_PER_FRAME = 50  # typical settling of a 4-bit network, before the pipeline fill
PRACTICAL_SECONDS = 20 * 60


def lava_processes(graph: ir.SpikingGraph) -> int:
    """Processes the lowering builds: one per node except flatten, delays on short branches,
    the injector and the recorder."""
    own = sum(not isinstance(n, ir.Flatten | ir.Add) for n in graph.nodes)
    adds = sum(len(n.inputs) - 1 for n in graph.nodes if isinstance(n, ir.Add))
    return own + adds + 2


def estimate_seconds(graph: ir.SpikingGraph, frames: int) -> float:
    depth = max(synaptic_depths(graph).values())
    ms_per_step = MS_PER_PROCESS * lava_processes(graph) + MS_PER_MAC * sum(dense_macs(graph).values())
    return frames * (STEPS_PER_FRAME + depth) * ms_per_step / 1e3


def synaptic_depths(graph: ir.SpikingGraph) -> dict[str, int]:
    """Per node (and the input), the synaptic hops on its longest path from the input: the steps
    by which Lava's one-step synapses delay it (average pooling is lowered to a conv)."""
    depth = {ir.INPUT: 0}
    for node in graph.nodes:
        hop = isinstance(node, ir.SYNAPTIC + (ir.AvgPool,))
        depth[node.name] = max(depth[i] for i in node.inputs) + hop
    return depth


def check_lava_run(graph: ir.SpikingGraph, frames: int, force: bool) -> float:
    """The estimate in seconds; an error naming it when it is impractical and not forced."""
    seconds = estimate_seconds(graph, frames)
    if seconds > PRACTICAL_SECONDS and not force:
        raise BackendUnavailableError(
            f"--backend lava: about {seconds / 60:.0f} min estimated for {frames} frame runs of this "
            f"graph ({lava_processes(graph)} Lava processes); use a smaller --input-size or --frames, "
            "or --force to run anyway")
    return seconds
