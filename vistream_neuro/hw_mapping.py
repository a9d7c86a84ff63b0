"""Maps a spiking graph onto the cores of a neuromorphic chip and prices a run's frames on it.

Populations are the nodes that hold state and send messages: ST-BIF and sigma-delta neurons and
max pools.  A population's synapses are the paths into it: an identity (residual skip), one conv,
linear or average pool, each from another population or the host (the input).  Each core holds one
rectangular block of one population (channels x rows x columns) with the synapses into it, as
layer-wise partitioners do; the block shape is the one that needs the fewest cores under the
chip's limits (neurons, synaptic memory, input axons per core).

Per frame, from the operation counts of an actual run (:class:`vistream_neuro.accounting.FrameOps`):
synaptic operations, spike messages (one per source spike and destination core; every message
leaves its core, since a core holds one layer, and the part that leaves its chip is counted
apart), router hops, neuron updates, time steps, energy and latency.  Estimates, stated where they
are made: a spike's destination cores and hops are the means over its population (spikes assumed
spread evenly), and a layer's work spreads evenly over its cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vistream_neuro import ir
from vistream_neuro.accounting import FrameOps, dense_macs, fanout
from vistream_neuro.hardware import HardwareModel

POPULATIONS = (ir.Neuron, ir.SigmaDelta, ir.MaxPool)
LIMITS = ("neurons_per_core", "max_input_axons", "synaptic_memory_bits")


class MappingError(ir.GraphError):
    """The graph has a structure the mapper cannot place (the message names the nodes)."""


@dataclass(frozen=True)
class Term:
    """One synaptic path into a population: from ``source`` through ``op`` (None: identity)."""

    source: str
    op: ir.Conv | ir.Linear | ir.AvgPool | None


@dataclass
class LayerMap:
    """One population on the chip."""

    name: str
    kind: str
    shape: ir.Shape
    neurons: int
    fan_in: int  # synapses into one neuron (interior)
    synapses: int  # explicit synapses, exact at borders
    shared_weights: int  # distinct weights when kernels are shared
    block: tuple[int, int, int]  # channels x rows x columns per core
    cores: int
    first_core: int
    input_axons: int  # per core (the largest block)
    memory_bits: int  # per core
    output_routes: float = 0.0  # per core: (source neuron, destination core) pairs, mean
    dest_cores: float = 0.0  # destination cores per spike, mean over the population
    mean_hops: float = 0.0  # router hops per message, mean
    chip_crossings: float = 0.0  # chip boundaries per message, mean
    off_chip: float = 0.0  # fraction of messages that leave their chip
    violations: list[str] = field(default_factory=list)
    # per limit of LIMITS and max_output_axons: what the chosen block uses of it (1.0: all of it)
    utilisation: dict[str, float] = field(default_factory=dict)

    @property
    def limiting(self) -> str:
        """The resource that bounds this layer's blocks: a violated limit, else the fullest one."""
        if self.violations:
            return self.violations[0].split(":")[0]
        return max(self.utilisation, key=self.utilisation.get)

    def feasibility(self, hw: HardwareModel) -> dict:
        """What one core of this layer needs against the chip's limits, and the limiting one."""
        return {"layer": self.name, "fits": not self.violations, "limiting": self.limiting,
                "fan_in": self.fan_in, "neurons_per_core": int(np.prod(self.block)),
                "input_axons_per_core": self.input_axons, "memory_bits_per_core": self.memory_bits,
                "output_routes_per_core": round(self.output_routes, 1),
                "utilisation": {k: round(v, 4) for k, v in self.utilisation.items()},
                "limits": {k: getattr(hw, k) for k in self.utilisation}, "violations": list(self.violations)}

    def row(self) -> dict:
        return {"layer": self.name, "type": self.kind, "neurons": self.neurons, "fan_in": self.fan_in,
                "synapses": self.synapses, "shared_weights": self.shared_weights,
                "block": "x".join(map(str, self.block)), "cores": self.cores,
                "input_axons_per_core": self.input_axons, "memory_bits_per_core": self.memory_bits,
                "output_routes_per_core": round(self.output_routes, 1),
                "dest_cores_per_spike": round(self.dest_cores, 3),
                "hops_per_message": round(self.mean_hops, 3), "off_chip_fraction": round(self.off_chip, 4),
                "limiting": self.limiting, "violations": "; ".join(self.violations)}


def _map3(shape: ir.Shape) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2]) if len(shape) == 3 else (shape[0], 1, 1)


def _divisions(n: int) -> np.ndarray:
    """Block sizes that give distinct block counts for a dimension of ``n``."""
    return np.unique([math.ceil(n / k) for k in range(1, n + 1)])


class Mapper:
    """Partitions ``graph`` over cores of ``hw``; prices frames with :meth:`frame_cost`."""

    def __init__(self, graph: ir.SpikingGraph, hw: HardwareModel) -> None:
        self.graph, self.hw = graph, hw
        self.terms = {n.name: self._terms(n.input) for n in graph.nodes if isinstance(n, POPULATIONS)}
        pools = {t.op for terms in self.terms.values() for t in terms if isinstance(t.op, ir.AvgPool)}
        self._pool_fanout = {  # mean fan-out of a pooled source entry, for the synaptic ops of a frame
            p.name: float(fanout(ir.pool_as_conv(p, graph.shapes[p.input][0]), graph.shapes[p.input]).mean())
            for p in pools}
        caps: dict[str, int] = {}  # neurons per core, lowered where output routes overflow
        for _ in range(8):
            self._place_all(caps)
            over = {x.name: x for x in self.layers.values()
                    if x.output_routes > hw.max_output_axons and caps.get(x.name) != 1}
            if not over:
                break
            for name, layer in over.items():
                caps[name] = max(1, min(caps.get(name, hw.neurons_per_core),
                                        int(hw.max_output_axons / layer.dest_cores)))
        self._flag_routes()

    def _place_all(self, caps: dict[str, int]) -> None:
        self.layers: dict[str, LayerMap] = {}
        core = 0
        for node in self.graph.nodes:
            if isinstance(node, POPULATIONS):
                self.layers[node.name] = self._place(node, core, caps.get(node.name))
                core += self.layers[node.name].cores
        self.cores = core
        self._routes()

    # structure -----------------------------------------------------------------------------
    def _terms(self, name: str) -> list[Term]:
        if name == ir.INPUT or isinstance(self.graph.node(name), POPULATIONS):
            return [Term(name, None)]
        node = self.graph.node(name)
        if isinstance(node, ir.Add):
            return [t for i in node.inputs for t in self._terms(i)]
        if isinstance(node, ir.Flatten):
            return self._terms(node.input)
        inner = self._terms(node.input)
        if any(t.op is not None for t in inner):
            raise MappingError(f"{node.name}: two synaptic layers in series with no neurons between them; "
                               "a core applies one synaptic layer to the spikes it receives")
        return [Term(t.source, node) for t in inner]

    def _signed(self, source: str) -> bool:
        """Does this source send negative (or graded) messages, needing a payload or a second axon?"""
        return source != ir.INPUT and isinstance(self.graph.node(source), ir.Neuron | ir.SigmaDelta)

    def _term_fan_in(self, term: Term, out_shape: ir.Shape) -> tuple[int, int, int]:
        """Interior fan-in of one neuron, exact synapse count and shared weights of ``term``."""
        op, neurons = term.op, int(np.prod(out_shape))
        if op is None:
            return 1, neurons, 1
        in_shape = self.graph.shapes[op.input]
        if isinstance(op, ir.AvgPool):
            kh, kw = ir.pair(op.kernel)
            return kh * kw, int(fanout(ir.pool_as_conv(op, in_shape[0]), in_shape).sum()), kh * kw
        if isinstance(op, ir.Conv):
            _, per_group, kh, kw = op.weight.shape
            return per_group * kh * kw, int(fanout(op, in_shape).sum()), int(op.weight.size)
        return int(op.weight.shape[1]), int(op.weight.size), int(op.weight.size)

    def _axons(self, term: Term, cb, hb, wb):
        """Input axons a block needs from ``term`` (arrays broadcast over block shapes)."""
        op = term.op
        if op is None:
            return cb * hb * wb
        in_shape = self.graph.shapes[op.input]
        if isinstance(op, ir.Linear):
            return np.full_like(cb * hb * wb, int(np.prod(in_shape)))
        c_in, h_in, w_in = in_shape
        if isinstance(op, ir.AvgPool):
            (kh, kw), groups, per_group = ir.pair(op.kernel), c_in, 1
        else:
            _, per_group, kh, kw = op.weight.shape
            groups = op.groups
        per_out = op.weight.shape[0] // groups if isinstance(op, ir.Conv) else 1
        touched = np.where(cb % per_out == 0, cb // per_out, cb // per_out + 2)
        channels = np.minimum(groups, touched) * per_group
        (sh, sw) = ir.pair(op.stride)
        rows = np.minimum(h_in, (hb - 1) * sh + kh)
        cols = np.minimum(w_in, (wb - 1) * sw + kw)
        return channels * rows * cols

    def _memory(self, term: Term, cb, hb, wb):
        """Synaptic memory (bits) a block needs for ``term``: kernels once with weight sharing, else
        one weight per synapse."""
        bits = self.hw.weight_bits
        fan_in, _, _ = self._term_fan_in(term, (1,))
        explicit = cb * hb * wb * fan_in * bits
        if not self.hw.weight_sharing or term.op is None or isinstance(term.op, ir.Linear):
            return explicit
        per_channel = fan_in if isinstance(term.op, ir.Conv) else term.op.kernel[0] * term.op.kernel[1]
        return np.minimum(explicit, cb * per_channel * bits)

    def _place(self, node, first_core: int, cap: int | None) -> LayerMap:
        shape = self.graph.shapes[node.name]
        c, h, w = _map3(shape)
        terms = self.terms[node.name]
        fan = [self._term_fan_in(t, shape) for t in terms]
        cb, hb, wb = np.meshgrid(_divisions(c), _divisions(h), _divisions(w), indexing="ij")
        need = {
            "neurons_per_core": cb * hb * wb,
            "max_input_axons": sum(self._axons(t, cb, hb, wb) * (2 if self._signed(t.source)
                                                                 and self.hw.payload_bits == 0 else 1)
                                   for t in terms),
            "synaptic_memory_bits": sum(self._memory(t, cb, hb, wb) for t in terms),
        }
        ok = need["neurons_per_core"] <= (cap or self.hw.neurons_per_core)
        for limit in LIMITS:
            ok &= need[limit] <= getattr(self.hw, limit)
        violations = []
        cores = -(-c // cb) * -(-h // hb) * -(-w // wb)
        if ok.any():
            order = np.lexsort((need["max_input_axons"][ok] * cores[ok], cores[ok]))
            pick = tuple(a[ok][order[0]] for a in np.indices(cb.shape))
        else:
            pick = (0, 0, 0)  # the smallest block, one neuron per core
            violations = [f"{limit}: one neuron needs {int(need[limit][pick])} > {getattr(self.hw, limit)}"
                          for limit in LIMITS if need[limit][pick] > getattr(self.hw, limit)]
        if isinstance(node, ir.SigmaDelta | ir.MaxPool) and self.hw.payload_bits == 0:
            violations.append("payload_bits: sends graded messages, the chip has binary spikes only")
        return LayerMap(
            name=node.name, kind=type(node).__name__, shape=shape, neurons=int(np.prod(shape)),
            fan_in=sum(f[0] for f in fan), synapses=sum(f[1] for f in fan),
            shared_weights=sum(f[2] for f in fan), block=(int(cb[pick]), int(hb[pick]), int(wb[pick])),
            cores=int(cores[pick]), first_core=first_core,
            input_axons=int(need["max_input_axons"][pick]),
            memory_bits=int(need["synaptic_memory_bits"][pick]),
            violations=violations,
            utilisation={limit: float(need[limit][pick]) / getattr(self.hw, limit) for limit in LIMITS})

    # messages ------------------------------------------------------------------------------
    def _blocks_reached(self, term: Term, target: LayerMap) -> float:
        """Mean number of ``target``'s cores one spike of ``term.source`` reaches through ``term``."""
        op = term.op
        if op is None:
            return 1.0
        c, h, w = _map3(target.shape)
        cb, hb, wb = target.block
        if isinstance(op, ir.Linear):
            return float(-(-c // cb))
        c_in, h_in, w_in = self.graph.shapes[op.input]
        if isinstance(op, ir.AvgPool):
            (kh, kw), groups = ir.pair(op.kernel), c_in
        else:
            _, _, kh, kw = op.weight.shape
            groups = op.groups

        def spans(n_in, n_out, k, s, p, block):
            x = np.arange(n_in)
            lo = np.maximum(0, -(-(x + p - k + 1) // s))
            hi = np.minimum(n_out - 1, (x + p) // s)
            return np.where(lo <= hi, hi // block - lo // block + 1, 0).mean()

        (sh, sw), (ph, pw) = ir.pair(op.stride), ir.pair(op.padding)
        per_in, per_out = c_in // groups, c // groups
        group = np.arange(c_in) // per_in
        lo, hi = group * per_out, group * per_out + per_out - 1
        channel_blocks = (hi // cb - lo // cb + 1).mean()
        return float(channel_blocks * spans(h_in, h, kh, sh, ph, hb) * spans(w_in, w, kw, sw, pw, wb))

    def _position(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mesh row and global column of cores numbered chip by chip (chips side by side)."""
        chip, local = np.divmod(cores, self.hw.cores_per_chip)
        row, col = np.divmod(local, self.hw.mesh[1])
        return row, chip * self.hw.mesh[1] + col

    def _distance(self, a: LayerMap, b: LayerMap) -> tuple[float, float, float]:
        """Mean hops, chip crossings and off-chip fraction between the cores of two layers (up to 512
        of each)."""
        ca = np.linspace(a.first_core, a.first_core + a.cores - 1, min(a.cores, 512)).round().astype(int)
        cb = np.linspace(b.first_core, b.first_core + b.cores - 1, min(b.cores, 512)).round().astype(int)
        (ra, xa), (rb, xb) = self._position(ca), self._position(cb)
        hops = np.abs(ra[:, None] - rb[None]) + np.abs(xa[:, None] - xb[None])
        chips = np.abs(ca[:, None] // self.hw.cores_per_chip - cb[None] // self.hw.cores_per_chip)
        return float(hops.mean()), float(chips.mean()), float((chips > 0).mean())

    def _routes(self) -> None:
        """Destination cores, hops and output routes of every source, the host's input included."""
        self.input_dest = 0.0
        sums: dict[str, list[float]] = {}
        for name, terms in self.terms.items():
            target = self.layers[name]
            for term in terms:
                reached = self._blocks_reached(term, target)
                if term.source == ir.INPUT:
                    self.input_dest += reached
                    continue
                acc = sums.setdefault(term.source, [0.0, 0.0, 0.0, 0.0])
                acc[0] += reached
                for i, value in enumerate(self._distance(self.layers[term.source], target), 1):
                    acc[i] += reached * value
        for name, (dest, hops, chips, off) in sums.items():
            layer = self.layers[name]
            layer.dest_cores = dest
            layer.mean_hops, layer.chip_crossings, layer.off_chip = (
                (v / dest if dest else 0.0) for v in (hops, chips, off))
            layer.output_routes = dest * np.prod(layer.block)

    def _flag_routes(self) -> None:
        for layer in self.layers.values():
            layer.utilisation["max_output_axons"] = layer.output_routes / self.hw.max_output_axons
            if layer.output_routes > self.hw.max_output_axons:
                layer.violations.append(f"max_output_axons: {layer.output_routes:.0f} routes per core "
                                        f"> {self.hw.max_output_axons}")

    # neurons and synapses one by one (for simulators that take an explicit netlist) -------------
    def placement(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per neuron of population ``name`` (flat, C order), its core and its index in that core:
        blocks numbered channel block first, then row and column block, from the layer's first core."""
        layer = self.layers[name]
        c, h, w = _map3(layer.shape)
        cb, hb, wb = layer.block
        ch, y, x = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
        grid = (-(-c // cb), -(-h // hb), -(-w // wb))
        block = np.ravel_multi_index((ch // cb, y // hb, x // wb), grid).ravel()
        order = np.argsort(block, kind="stable")
        offset = np.empty_like(order)
        starts = np.searchsorted(block[order], block[order])
        offset[order] = np.arange(len(order)) - starts
        return layer.first_core + block, offset

    def synapse_pairs(self, term: Term, target: str) -> tuple[np.ndarray, np.ndarray]:
        """The explicit synapses of ``term`` into ``target``: flat indices of source and target
        neuron, every kernel position inside the input (the synapses the mapper counts)."""
        out_shape = self.graph.shapes[target]
        op = term.op
        if op is None and isinstance(self.graph.node(target), ir.MaxPool):  # its window, as a pool
            node = self.graph.node(target)
            op = ir.AvgPool(node.name, node.input, node.kernel, node.stride, node.padding)
        if op is None:
            index = np.arange(int(np.prod(out_shape)))
            return index, index
        in_shape = self.graph.shapes[op.input]
        if isinstance(op, ir.Linear):
            dst, src = np.indices(op.weight.shape).reshape(2, -1)
            return src, dst
        if isinstance(op, ir.AvgPool):
            op = ir.pool_as_conv(op, in_shape[0])
        return _conv_pairs(op, in_shape, _map3(out_shape))

    # totals and per-frame costs ---------------------------------------------------------------
    @property
    def chips(self) -> int:
        return -(-self.cores // self.hw.cores_per_chip)

    @property
    def depth(self) -> int:
        """Synaptic hops from the input to the deepest population (pipeline steps on chip)."""
        level: dict[str, int] = {ir.INPUT: 0}
        for name, terms in self.terms.items():
            level[name] = 1 + max(level[t.source] for t in terms)
        return max(level.values())

    def summary(self) -> dict:
        layers = self.layers.values()
        return {"cores": self.cores, "chips": self.chips, "neurons": sum(x.neurons for x in layers),
                "synapses": sum(x.synapses for x in layers),
                "shared_weights": sum(x.shared_weights for x in layers),
                "memory_bits": sum(x.memory_bits * x.cores for x in layers), "depth": self.depth,
                "fits": not any(x.violations for x in layers),
                "violations": {x.name: x.violations for x in layers if x.violations},
                "feasibility": [x.feasibility(self.hw) for x in layers]}

    def _events(self, ops: FrameOps, source: str) -> int:
        if source in ops.events:
            return ops.events[source]
        return ops.spikes_pos.get(source, 0) + ops.spikes_neg.get(source, 0)

    def _term_ops(self, ops: FrameOps, term: Term) -> float:
        op = term.op
        if isinstance(op, ir.SYNAPTIC):
            return ops.layer_cost(op.name)
        events = self._events(ops, term.source)
        return float(events) if op is None else events * self._pool_fanout[op.name]

    def frame_cost(self, ops: FrameOps) -> dict:
        """One frame on the chip: per layer and in total, operations, messages, energy, latency."""
        hw, layers = self.hw, {}
        for name, layer in self.layers.items():
            events = self._events(ops, name)
            sops = sum(self._term_ops(ops, t) for t in self.terms[name])
            active = ops.updates_event.get(name, events)
            idle = ops.updates_dense.get(name, active) - active
            messages = events * layer.dest_cores
            energy = (sops * hw.sop_pj + active * hw.neuron_update_pj + idle * hw.idle_update_pj
                      + messages * (hw.spike_pj + layer.mean_hops * hw.hop_pj
                                    + layer.chip_crossings * hw.chip_hop_pj))
            work_ns = (sops * hw.sop_ns + active * hw.update_ns) / layer.cores
            layers[name] = {"sops": sops, "spikes": events, "messages": messages,
                            "messages_off_chip": messages * layer.off_chip,
                            "hops": messages * layer.mean_hops, "updates_active": active,
                            "updates_idle": idle, "energy_pj": energy, "work_ns_per_core": work_ns}
        input_messages = ops.events.get(ir.INPUT, 0) * self.input_dest
        steps = ops.timesteps + self.depth - 1
        energy = (sum(x["energy_pj"] for x in layers.values()) + input_messages * hw.spike_pj
                  + steps * hw.step_pj)
        busiest = max((x["work_ns_per_core"] for x in layers.values()), default=0.0)
        return {"timesteps": steps, "sops": sum(x["sops"] for x in layers.values()),
                "messages": sum(x["messages"] for x in layers.values()), "input_messages": input_messages,
                "messages_off_chip": sum(x["messages_off_chip"] for x in layers.values()),
                "hops": sum(x["hops"] for x in layers.values()),
                "neuron_updates": sum(x["updates_active"] + x["updates_idle"] for x in layers.values()),
                "energy_pj": energy, "latency_us": (steps * hw.barrier_ns + busiest) * 1e-3, "layers": layers}


def _conv_pairs(op: ir.Conv, in_shape: ir.Shape, out_shape: tuple[int, int, int],
                ) -> tuple[np.ndarray, np.ndarray]:
    """(source, target) flat indices of a conv's synapses, padding and groups included."""
    c_out, per_group, kh, kw = op.weight.shape
    _, h_in, w_in = in_shape
    _, h, w = out_shape
    (sh, sw), (ph, pw) = ir.pair(op.stride), ir.pair(op.padding)
    per_out = c_out // op.groups
    co, oy, ox = (a.ravel() for a in np.meshgrid(np.arange(c_out), np.arange(h), np.arange(w), indexing="ij"))
    dst = np.ravel_multi_index((co, oy, ox), out_shape)
    sources, targets = [], []
    for ci in range(per_group):
        channel = (co // per_out) * per_group + ci
        for ky in range(kh):
            iy = oy * sh - ph + ky
            for kx in range(kw):
                ix = ox * sw - pw + kx
                inside = (iy >= 0) & (iy < h_in) & (ix >= 0) & (ix < w_in)
                sources.append(np.ravel_multi_index((channel[inside], iy[inside], ix[inside]), in_shape))
                targets.append(dst[inside])
    return np.concatenate(sources), np.concatenate(targets)


def dense_frame_ops(graph: ir.SpikingGraph) -> FrameOps:
    """The dense ANN as a chip would run it: every neuron sends its value once per frame as a graded
    spike and every synapse works (SOPs = the ANN's MACs), one time step per layer."""
    macs = dense_macs(graph)
    analog = {n.name for n in graph.nodes if isinstance(n, ir.SYNAPTIC) and n.input == ir.INPUT}
    sizes = {n.name: int(np.prod(graph.shapes[n.name])) for n in graph.nodes if isinstance(n, ir.SPIKING)}
    pools = {n.name: int(np.prod(graph.shapes[n.name])) for n in graph.nodes if isinstance(n, ir.MaxPool)}
    return FrameOps(
        timesteps=1, sops={k: v for k, v in macs.items() if k not in analog},
        input_macs={k: v for k, v in macs.items() if k in analog}, spikes_pos=dict(sizes),
        spikes_neg=dict.fromkeys(sizes, 0), updates_dense=dict(sizes), updates_event=dict(sizes),
        min_spikes=dict.fromkeys(sizes, 0), events={ir.INPUT: int(np.prod(graph.input_shape)), **pools})
