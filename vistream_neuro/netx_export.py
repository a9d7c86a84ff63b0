"""The sigma-delta baseline as a lava-dl netx network (HDF5), and the integer graph netx runs.

netx (lava-dl 0.6) builds a chain of blocks from ``layer/0, layer/1, ...``: an input layer, then
conv / dense synapses each followed by its neuron, flattens between; it has no pooling, add or
concat, one ``vThMant`` per layer, and its SDNN neuron is Lava's ``SigmaDelta`` in fixed point
with ``spike_exp = state_exp = 6`` and ReLU (``hdf5.Network`` never reads an activation).  Per
neuron and step, with the file's threshold ``T`` and bias ``B``::

    sigma += a_in;  act = relu(sigma + 4096 B);  delta = act - act_prev + residue
    sent = delta if |delta| >= 4096 T else 0;  residue = delta - sent;  message = sent >> 6

So if one count of ``sigma`` (the layer's state unit) is worth ``s``, the threshold is ``4096 T s``,
the bias ``4096 B s`` and one count of a message ``64 s``.  Conventions chosen here:

- Input: ``layer/0`` is netx's input layer with an SDNN neuron of ``vThMant`` 0, a ``Delta`` that
  sends exactly 64 times the change of the integer frame held at its input: netx does the
  frame differencing (DiffEncode) itself.  The host holds ``round(frame / input_unit)`` there for
  every step of a frame.  In the integer IR graph that factor 64 is in the first layer's weights,
  and the host sends frame differences (``locc``), as for every backend.
- Units: per output channel ``c`` of a layer, ``s_c = theta_c / (4096 T)`` with one integer ``T``
  per layer, so per-channel thresholds stay exact (ReLU commutes with positive per-channel
  scaling; the next layer's weights take the inverse).  ``T`` is the largest integer up to
  ``max_threshold`` for which the weights ``W * mu_in / s_c`` fit Loihi's mixed-sign 8 bits as
  even integers in [-126, 126] (``mu``: what one message count is worth, ``64 s`` of the layer
  before, ``input_unit / 64`` for the input).  A larger ``T`` means finer weights and biases (the
  bias grid is ``theta / T``) but larger states; the default 16 keeps an activation of 100
  thresholds inside Loihi's 24-bit state.
- A trailing conv / linear layer without neuron becomes netx's ``sigma_output`` neuron (Lava's
  ``Sigma``: every step it outputs its accumulated input, which is what the IR's accumulated
  output is), with ``s_c = peak_c / 126``.  netx's ``Sigma`` takes no bias: that bias stays in
  the integer graph (the host adds it once, as the Lava backend does for an output's bias) and
  is written as the root dataset ``output_bias`` (in output units) for netx users to add.

The integer graph keeps node names and topology; its ``SigmaDelta`` thresholds and conv/linear
biases are the file's ``vThMant`` and ``bias`` integers, so it means Lava's fixed-point
arithmetic above (run it on Lava with ``precision="fixed"``), not the float sigma-delta semantics
of the other backends.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from neurons.loihi import STATE_LIMIT, weight_limit
from vistream_neuro import ir
from vistream_neuro.atomic import write_h5_atomic
from vistream_neuro.fixed_point import FixedPointGraph, input_units, scaled_weight

SPIKE_EXP = STATE_EXP = 6  # netx's SDNN exponents (hdf5.Network defaults)
STATE_SCALE = 2 ** (SPIKE_EXP + STATE_EXP)  # Lava's SigmaDelta multiplies vth and bias by this
MESSAGE_SCALE = 2**SPIKE_EXP  # one message count is worth this many state counts
WEIGHT_LIMIT = weight_limit()  # even mixed-sign 8-bit weights
MAX_BIAS = STATE_LIMIT // STATE_SCALE  # 4096 * bias must fit Loihi's 24-bit state
MAX_GROUPS = 127  # Lava's Conv process holds groups in 8 bits


class NetxExportError(ir.GraphError):
    """The graph has something lava-dl netx cannot express (the message names the node)."""


def _refuse(node: ir.Node) -> None:
    if isinstance(node, ir.Add):
        raise NetxExportError(f"{node.name}: residual adds are unsupported by netx (a chain of blocks)")
    if isinstance(node, ir.AvgPool | ir.MaxPool):
        raise NetxExportError(f"{node.name}: netx (lava-dl 0.6) implements no pooling layer")
    if isinstance(node, ir.Neuron):
        raise NetxExportError(f"{node.name}: ST-BIF has no netx neuron type; export "
                              "vistream_neuro.sigma_delta.to_sigma_delta(graph) instead")
    if isinstance(node, ir.SigmaDelta) and not node.relu:
        raise NetxExportError(f"{node.name}: netx's SDNN neuron is ReLU only (hdf5.Network reads no "
                              "activation); an identity sigma-delta cannot be exported")
    if isinstance(node, ir.Conv) and node.groups > MAX_GROUPS:
        raise NetxExportError(f"{node.name}: {node.groups} groups; Lava's Conv holds at most {MAX_GROUPS}")


def _layers(graph: ir.SpikingGraph) -> list[tuple[ir.Conv | ir.Linear, ir.SigmaDelta | None, bool]]:
    """(synapse, its sigma-delta or None for a trailing one, flattened before) per netx block."""
    layers, pending, flat, last = [], None, False, ir.INPUT
    for node in graph.nodes:
        _refuse(node)
        if node.input != last:
            raise NetxExportError(f"{node.name}: reads {node.input!r}, not the node before it; netx "
                                  "chains its layers one after the other")
        if isinstance(node, ir.SYNAPTIC):
            if pending is not None:
                raise NetxExportError(f"{pending.name}: a conv/linear layer without a neuron can only "
                                      "be the graph's output in netx")
            pending = node
        elif isinstance(node, ir.SigmaDelta):
            if pending is None:
                raise NetxExportError(f"{node.name}: a sigma-delta neuron must follow a conv or linear "
                                      "layer (netx blocks are synapse + neuron)")
            layers.append((pending, node, flat))
            pending, flat = None, False
        elif isinstance(node, ir.Flatten):
            if pending is not None:
                raise NetxExportError(f"{node.name}: flattens {pending.name}, which has no neuron")
            flat = flat or len(graph.shapes[node.input]) == 3
        else:
            raise NetxExportError(f"{node.name}: node type {type(node).__name__} has no netx form")
        last = node.name
    if graph.output != last:
        raise NetxExportError(f"output {graph.output!r} is not the last node; netx's output is its "
                              "last layer")
    if pending is not None:
        layers.append((pending, None, flat))
    if not layers:
        raise NetxExportError("the graph has no conv or linear layer to export")
    return layers


def _rows(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    return values.reshape(-1, *([1] * (like.ndim - 1)))


def to_netx(graph: ir.SpikingGraph, input_unit: float | np.ndarray, *,
            max_threshold: int = 16) -> FixedPointGraph:
    """The integer graph netx runs for the float sigma-delta ``graph`` (see the module docstring).

    ``input_unit``: what one integer step of the encoded input is worth (a scalar or one per input
    channel).  Raises :class:`NetxExportError` naming the node for what netx cannot express.
    """
    input_unit = input_units(graph, input_unit)
    if max_threshold < 1:
        raise ValueError(f"need max_threshold >= 1, got {max_threshold!r}")
    layers = _layers(graph)
    replaced: dict[str, ir.Node] = {}
    mu = np.broadcast_to(input_unit, (graph.input_shape[0],)) / MESSAGE_SCALE
    for i, (syn, sd, _) in enumerate(layers):
        n_in = graph.shapes[syn.input][0]
        mu = np.repeat(mu, n_in // mu.size) if mu.size != n_in else mu  # per channel -> per feature
        scaled = scaled_weight(syn, mu)
        out = scaled.shape[0]
        peak = np.abs(scaled).reshape(out, -1).max(1)
        free = np.where(peak > 0, peak / WEIGHT_LIMIT, 1.0)  # the finest unit the weights allow
        if sd is None:
            s, grid = free, 1.0
        else:
            theta = np.broadcast_to(sd.threshold, (out,)).astype(np.float64)
            if not theta.any():
                threshold, s = 0, free
            elif not theta.all():
                raise NetxExportError(f"{sd.name}: zero and nonzero thresholds in one layer; netx has one "
                                      "vThMant per layer")
            else:
                fit = np.divide(WEIGHT_LIMIT * theta, STATE_SCALE * peak, out=np.full(out, np.inf),
                                where=peak > 0)
                threshold = int(min(max_threshold, np.floor(fit.min())))
                if threshold < 1:
                    c = int(fit.argmin())
                    raise NetxExportError(
                        f"{syn.name}: weights cannot fit 8 bits at threshold {theta[c]:.3g} (channel {c}): "
                        f"they need vThMant {fit[c]:.3g} < 1 on netx's grid; raise the threshold factor"
                        + (" or use a finer input_unit" if i == 0 else ""))
                s = theta / (STATE_SCALE * threshold)
            grid = STATE_SCALE
            replaced[sd.name] = ir.SigmaDelta(sd.name, sd.input, np.array(float(threshold)), relu=True)
        weight = 2 * np.round(scaled / (2 * _rows(s, scaled)))
        bias = None if syn.bias is None else np.round(syn.bias / (grid * s))
        if sd is not None and bias is not None and np.abs(bias).max(initial=0) >= MAX_BIAS:
            raise NetxExportError(f"{syn.name}: bias {np.abs(bias).max():.0f} x {STATE_SCALE} overflows "
                                  f"Loihi's 24-bit state; lower max_threshold")
        first = MESSAGE_SCALE if i == 0 else 1  # the input Delta's factor 64, see the module docstring
        replaced[syn.name] = dataclasses.replace(syn, weight=weight * first, bias=bias)
        mu = s * (MESSAGE_SCALE if sd is not None else 1)
    fixed = ir.SpikingGraph(graph.input_shape, [replaced.get(n.name, n) for n in graph.nodes], graph.output)
    return FixedPointGraph(fixed, input_unit, mu.copy())


def export_netx(graph: ir.SpikingGraph, path: str | Path, input_unit: float | np.ndarray, *,
                threshold_factor: float | None = None, max_threshold: int = 16) -> FixedPointGraph:
    """Write the netx HDF5 file of the float sigma-delta ``graph`` to ``path`` atomically and return
    the integer graph it holds (run it on Lava with ``precision="fixed"``).

    ``threshold_factor``: the factor given to ``to_sigma_delta``, recorded when known.  Errors
    (:class:`NetxExportError`) come before any file is touched; a failed write leaves none.
    """
    fx = to_netx(graph, input_unit, max_threshold=max_threshold)
    write_h5_atomic(path, lambda f: _write(f, graph, fx, threshold_factor))
    return fx


def _dataset(group: h5py.Group, **values) -> None:
    for key, value in values.items():
        group[key] = np.bytes_(value) if isinstance(value, str) else value


def _write(f: h5py.File, graph: ir.SpikingGraph, fx: FixedPointGraph, threshold_factor: float | None) -> None:
    layers = _layers(fx.graph)
    trailing = layers[-1][1] is None
    f.attrs.update(
        generator="vistream-neuro",
        description="sigma-delta baseline (vistream_neuro.sigma_delta.to_sigma_delta) of a vistream-neuro "
                    "ST-BIF graph, for lava-dl netx (lava.lib.dl.netx.hdf5.Network)",
        threshold_factor=np.nan if threshold_factor is None else float(threshold_factor),
        input_unit=fx.input_unit,
        input_encoding="hold round(frame / input_unit) at the input for every step of a frame; its SDNN "
                       "neuron (vThMant 0) sends 64 x each change exactly",
        output_unit=np.asarray(fx.output_unit, dtype=np.float64),
        output_encoding="sigma (accumulated input, every step)" if trailing else "sigma-delta messages",
        spike_exp=SPIKE_EXP, state_exp=STATE_EXP, output_node=graph.output)
    root = f.create_group("layer")
    k = 0

    def layer() -> h5py.Group:
        nonlocal k
        k += 1
        return root.create_group(str(k - 1))

    g = layer()
    _dataset(g, type="input", shape=np.array(fx.graph.input_shape))
    _dataset(g.create_group("neuron"), type="SDNN", vThMant=0, activation="relu")
    for i, (syn, sd, flat) in enumerate(layers):
        if flat:
            _dataset(layer(), type="flatten", shape=np.array([fx.graph.shapes[syn.input][0], 1, 1]))
        weight = (syn.weight / MESSAGE_SCALE if i == 0 else syn.weight).astype(np.int32)
        g = layer()
        if isinstance(syn, ir.Conv):
            out_c, in_c, kh, kw = syn.weight.shape
            _dataset(g, type="conv", shape=np.array(fx.graph.shapes[syn.name]), weight=weight,
                     stride=np.array(ir.pair(syn.stride)), padding=np.array(ir.pair(syn.padding)),
                     dilation=np.array([1, 1]), groups=syn.groups, inChannels=in_c * syn.groups,
                     outChannels=out_c, kernelSize=np.array([kh, kw]))
        else:
            _dataset(g, type="dense", shape=np.array(fx.graph.shapes[syn.name]), weight=weight,
                     inFeatures=weight.shape[1], outFeatures=weight.shape[0])
        neuron = g.create_group("neuron")
        if sd is None:
            _dataset(neuron, type="SDNN", vThMant=0, activation="relu", sigma_output=True)
            if syn.bias is not None:
                f["output_bias"] = syn.bias
                f["output_bias"].attrs["note"] = ("netx's sigma output has no bias: add this (in output "
                                                  "units) once to its output")
            continue
        _dataset(neuron, type="SDNN", vThMant=int(sd.threshold), activation="relu")
        if syn.bias is not None:
            g["bias"] = syn.bias.astype(np.int32)
