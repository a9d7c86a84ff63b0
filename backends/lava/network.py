"""Lowering of a spiking graph to one Lava network, built once and kept running across frames.

Mapping (Lava's layout ``(X, Y, C)`` for maps):

- input: Lava's io ``Injector``, blocking: before each run the host sends one message per step (the
  frame's current at its first step, zeros after), so an input can never arrive a step late (a
  non-blocking injector reads whatever its receiving thread has queued when the step starts);
- conv / linear: :class:`ExactConv` / Lava's ``Dense``, each delaying by one step as on Loihi;
  their biases move to the neurons they feed (Loihi keeps biases in the compartments) and enter
  once, delayed by the layer's depth;
- average pooling: a fixed-weight depthwise :class:`ExactConv`;
- residual add: every branch connects into the consumer's one input port (Lava sums them),
  the shorter branches behind a :class:`Delay` so all arrive in the same step;
- max pooling: :class:`MaxPoolChange`; flatten: a reshaping virtual port;
- ST-BIF neurons: :class:`neurons.lava_stbif.STBIF`, settling within the step for the ``layerwise``
  schedule (every path into a node is equally long, so a layer gets all of a frame's input at once);
- sigma-delta neurons: Lava's own ``SigmaDelta`` (``lava.proc.sdn``), ReLU or identity; in
  ``fixed_pt`` with netx's exponents (``spike_exp = state_exp = 6``: threshold and bias are netx's
  ``vThMant`` and bias integers, messages ``delta >> 6``), so a graph made by
  :func:`vistream_neuro.netx_export.to_netx` runs the numbers netx runs; ``floating_pt`` with
  exponents 0.  Lava keeps the bias inside the activation from the first step at every depth
  (as netx does), not delayed by the layer's depth like the ST-BIF bias;
- a :class:`StepRecorder` probes what the host needs every step (neurons, their inputs, the
  inputs of synaptic layers, max pooling, the output).

With every path into a node equally long, node ``n`` does in frame step ``t + latency[n]`` what
the delay-free simulation does in step ``t``: the same spikes, only shifted.
"""

from __future__ import annotations

import atexit
from typing import NamedTuple

import numpy as np

from neurons.lava_compat import create_runtime, import_lava, run_checked
from vistream_neuro import ir

import_lava()

from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.injector import Injector, PyLoihiInjectorModel  # noqa: E402
from lava.proc.io.utils import ChannelConfig, ReceiveEmpty  # noqa: E402
from lava.proc.sdn.process import ActivationMode, SigmaDelta  # noqa: E402

from backends.lava.processes import (  # noqa: E402
    Delay,
    ExactConv,
    MaxPoolChange,
    StepRecorder,
    recorder_model,
)
from backends.lava_estimate import synaptic_depths  # noqa: E402
from neurons.lava_stbif import STBIF, raise_on_fault  # noqa: E402
from neurons.loihi import MESSAGE_BITS, WEIGHT_BITS  # noqa: E402
from vistream_neuro.netx_export import SPIKE_EXP, STATE_EXP  # noqa: E402


class LoweringError(ir.GraphError):
    """The graph has something this Lava lowering cannot express (the message names it)."""


def to_lava(x: np.ndarray) -> np.ndarray:
    """IR layout ``(C, H, W)`` -> Lava ``(X, Y, C)``; vectors unchanged."""
    return x.transpose(2, 1, 0) if x.ndim == 3 else x


def _lava_shape(shape: ir.Shape) -> tuple[int, ...]:
    return tuple(reversed(shape)) if len(shape) == 3 else tuple(shape)


class _Source(NamedTuple):
    """A Lava OutPort carrying (part of) a node's value, maybe flattened on the way.

    (Not a dataclass: Lava's model search executes this module outside ``sys.modules``.)"""

    port: object
    flatten: bool = False

    def connect(self, in_port) -> None:
        (self.port.flatten() if self.flatten else self.port).connect(in_port)


def mantissa_exponent(name: str, weight: np.ndarray) -> tuple[np.ndarray, int]:
    """Split integer-valued weights into 8-bit signed mantissas and one exponent >= 0."""
    for exp in range(32):
        mant = weight / 2.0 ** exp
        if np.all(mant == np.round(mant)) and np.abs(mant).max(initial=0) < 2 ** (WEIGHT_BITS - 1):
            return mant.astype(np.int64), exp
    raise LoweringError(f"{name}: weights are not 8-bit mantissas times a power of two; convert the "
                        "graph with vistream_neuro.fixed_point.to_fixed_point for fixed_pt")


class LavaNetwork:
    """The Lava processes of one graph, their step latencies and the recorder's probes."""

    def __init__(self, graph: ir.SpikingGraph, fixed: bool, chunk: int, settle: bool = False) -> None:
        self.graph, self.fixed, self.settle = graph, fixed, settle
        self.tag = "fixed_pt" if fixed else "floating_pt"
        self.latency = synaptic_depths(graph)
        self._sources: dict[str, list[_Source]] = {}
        self._flat_of_map: dict[str, ir.Shape] = {}  # 1-D nodes that hold a flattened (C, H, W) map
        self._biases: dict[str, np.ndarray] = {}  # conv/linear biases waiting for their neuron
        self.biases: dict[str, np.ndarray] = {}  # node -> the bias its value carries once, IR layout
        self.neurons: dict[str, STBIF] = {}
        self.sigma_deltas: dict[str, SigmaDelta] = {}
        self.resettable: list = []  # processes with an ``epoch`` Var
        self.dense: list[Dense] = []
        self._zeros = np.zeros(_lava_shape(graph.input_shape))
        self._pending: np.ndarray | None = None  # the next step's input current, Lava layout
        self.injector = Injector(shape=self._zeros.shape,
                                 buffer_size=max(self.latency.values(), default=0) + chunk,
                                 channel_config=ChannelConfig(receive_empty=ReceiveEmpty.BLOCKING))
        self._sources[ir.INPUT] = [_Source(self.injector.out_port)]
        for node in graph.nodes:
            getattr(self, f"_lower_{type(node).__name__.lower()}")(node)
        if graph.output in self._biases:
            self.biases[graph.output] = self._biases.pop(graph.output)
        if self._biases:
            raise LoweringError(f"{', '.join(self._biases)}: a bias must feed a neuron (or be the "
                                "output) to be lowered to Lava")
        self.probes = self._probe_names()
        self.depth = max(self.latency[n] for n in self.probes) if self.probes else 0
        self.max_run = self.depth + chunk  # steps per run: what the recorder's pipe buffers
        self.recorder = StepRecorder(
            shapes=[self._port_shape(n) for n in self.probes], buffer_size=self.max_run)
        for i, name in enumerate(self.probes):
            self._connect(name, getattr(self.recorder, f"in_{i}"))
        untagged = {self.recorder: recorder_model(self.recorder), self.injector: PyLoihiInjectorModel}
        self._config = Loihi2SimCfg(select_tag=self.tag, exception_proc_model_map=untagged)
        self._started = False
        self._stop_at_exit = self.recorder.stop
        self.steps_run = 0

    # lowering of each node type -----------------------------------------------------------
    def _connect(self, name: str, in_port) -> None:
        for source in self._sources[name]:
            source.connect(in_port)

    def _port_shape(self, name: str) -> tuple[int, ...]:
        return _lava_shape(self.graph.shapes[name])

    def _weights(self, name: str, weight: np.ndarray) -> tuple[np.ndarray, int]:
        return mantissa_exponent(name, weight) if self.fixed else (weight, 0)

    def _lower_conv(self, node: ir.Conv) -> None:
        in_shape = self._port_shape(node.input)
        weight = node.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).copy(order="C")
        weight, exp = self._weights(node.name, weight)
        conv = ExactConv(weight=weight, weight_exp=exp, input_shape=in_shape,
                         padding=ir.pair(node.padding)[::-1], stride=ir.pair(node.stride)[::-1],
                         groups=node.groups, num_message_bits=MESSAGE_BITS, name=node.name)
        self.resettable.append(conv)
        self._synapse(node, conv.s_in, conv.a_out)

    def _lower_avgpool(self, node: ir.AvgPool) -> None:
        """As the depthwise conv it is (zero padding counted)."""
        if self.fixed:
            raise LoweringError(f"{node.name}: average pooling has no integer weights; convert the "
                                "graph with vistream_neuro.fixed_point.to_fixed_point for fixed_pt")
        kh, kw = ir.pair(node.kernel)
        self._lower_conv(ir.pool_as_conv(node, self.graph.shapes[node.input][0], 1.0 / (kh * kw)))

    def _lower_linear(self, node: ir.Linear) -> None:
        weight = node.weight
        if node.input in self._flat_of_map:  # the input arrives flattened in (X, Y, C) order
            order = np.arange(weight.shape[1]).reshape(self._flat_of_map[node.input])
            weight = weight[:, order.transpose(2, 1, 0).ravel()]
        weight, exp = self._weights(node.name, weight)
        dense = Dense(weights=weight, weight_exp=exp, num_message_bits=MESSAGE_BITS, name=node.name)
        self.dense.append(dense)
        self._synapse(node, dense.s_in, dense.a_out)

    def _synapse(self, node, s_in, a_out) -> None:
        self._connect(node.input, s_in)
        self._sources[node.name] = [_Source(a_out)]
        if getattr(node, "bias", None) is not None:
            self._biases[node.name] = node.bias

    def _lower_add(self, node: ir.Add) -> None:
        sources = []
        for name in node.inputs:
            lag = self.latency[node.name] - self.latency[name]
            if lag == 0:
                sources += self._sources[name]
                continue
            delay = Delay(shape=self._port_shape(name), steps=lag, name=f"{node.name}/delay_{name}")
            self._connect(name, delay.a_in)
            self.resettable.append(delay)
            sources.append(_Source(delay.s_out))
        self._sources[node.name] = sources
        biases = [self._biases.pop(i) for i in node.inputs if i in self._biases]
        if biases:
            self._biases[node.name] = np.sum(biases, axis=0)

    def _lower_maxpool(self, node: ir.MaxPool) -> None:
        pool = MaxPoolChange(in_shape=self._port_shape(node.input), out_shape=self._port_shape(node.name),
                             kernel=ir.pair(node.kernel), stride=ir.pair(node.stride),
                             padding=ir.pair(node.padding), name=node.name)
        self._connect(node.input, pool.a_in)
        self.resettable.append(pool)
        self._sources[node.name] = [_Source(pool.s_out)]

    def _lower_flatten(self, node: ir.Flatten) -> None:
        in_shape = self.graph.shapes[node.input]
        if len(in_shape) == 3:
            self._flat_of_map[node.name] = in_shape
        self._sources[node.name] = [_Source(s.port, True) for s in self._sources[node.input]]

    def _lower_neuron(self, node: ir.Neuron) -> None:
        shape = self._port_shape(node.name)
        scale, payload = node.scale, node.output_scale
        bias = self._biases.pop(node.input, np.zeros(()))
        if bias.any():
            self.biases[node.input] = bias
        if len(shape) == 3 and bias.ndim == 1:
            bias = np.broadcast_to(bias, shape)
        if self.fixed:
            for what, value in (("threshold", scale), ("payload", payload), ("bias", bias)):
                if np.any(value != np.round(value)):
                    raise LoweringError(f"{node.name}: fixed_pt needs an integer {what}; convert the "
                                        "graph with vistream_neuro.fixed_point.to_fixed_point")
            scale, payload, bias = (np.asarray(v).astype(np.int64) for v in (scale, payload, bias))
        neuron = STBIF(shape=shape, scale=scale, payload=payload, bias=bias, pos_max=node.pos_max,
                       neg_min=node.neg_min, bias_delay=self.latency[node.input], settle=self.settle,
                       name=node.name)
        self._connect(node.input, neuron.a_in)
        self.neurons[node.name] = neuron
        self.resettable.append(neuron)
        self._sources[node.name] = [_Source(neuron.s_out)]

    def _lower_sigmadelta(self, node: ir.SigmaDelta) -> None:
        shape = self._port_shape(node.name)
        bias = self._biases.pop(node.input, np.zeros(()))
        if bias.any():
            self.biases[node.input] = bias
        bias, vth = np.broadcast_to(bias, shape), node.threshold  # per channel: C is the last axis
        if vth.ndim:
            vth = np.broadcast_to(vth, shape)
        exp = 0
        if self.fixed:
            for what, value in (("threshold", vth), ("bias", bias)):
                if np.any(value != np.round(value)):
                    raise LoweringError(f"{node.name}: fixed_pt needs an integer {what} (netx's grid); "
                                        "make the graph with vistream_neuro.netx_export.to_netx")
            vth, bias, exp = vth.astype(np.int64), bias.astype(np.int64), SPIKE_EXP
        state_exp = STATE_EXP if exp else 0
        sd = SigmaDelta(shape=shape, vth=vth if vth.ndim == 0 else 0, bias=bias, spike_exp=exp,
                        state_exp=state_exp, name=node.name,
                        act_mode=ActivationMode.RELU if node.relu else ActivationMode.UNIT)
        if vth.ndim:  # Lava declares one threshold; its models compare elementwise, so a Var per neuron
            var = Var(shape=shape, init=vth * 2 ** (exp + state_exp))
            var.name, var.process, sd.vth = "vth", sd, var
            sd.vars.add_members({"vth": var})
        self._connect(node.input, sd.a_in)
        self.sigma_deltas[node.name] = sd
        self._sources[node.name] = [_Source(sd.s_out)]

    def _probe_names(self) -> list[str]:
        """Nodes whose values the host needs every step (never the input: the host sent it)."""
        names = [self.graph.output]
        for node in self.graph.nodes:
            if isinstance(node, ir.SPIKING):
                names += [node.name, node.input]
            elif isinstance(node, ir.SYNAPTIC + (ir.AvgPool,)):
                names.append(node.input)
            elif isinstance(node, ir.MaxPool):
                names.append(node.name)
        return [n for n in dict.fromkeys(names) if n != ir.INPUT]

    # running ------------------------------------------------------------------------------
    def from_lava(self, name: str, flat: np.ndarray) -> np.ndarray:
        """A probe's flat Lava data -> the node's value in IR layout."""
        shape = self.graph.shapes[name]
        if len(shape) == 3:
            return flat.reshape(_lava_shape(shape)).transpose(2, 1, 0)
        if name in self._flat_of_map:
            return flat.reshape(_lava_shape(self._flat_of_map[name])).transpose(2, 1, 0).ravel()
        return flat

    def _start(self) -> None:
        """Compile and spawn the processes once; the runtime lives until :meth:`close`, an
        exception in a run, or the interpreter's exit."""
        if not self._started:
            self._started = True
            atexit.register(self._stop_at_exit)
            try:
                create_runtime(self.recorder, self._config)
            except BaseException as exc:
                self._stop_after(exc)
                raise

    def inject(self, current: np.ndarray) -> None:
        """Queue ``current`` (IR layout, one sample) to enter the network at the next step."""
        self._start()
        self._pending = np.ascontiguousarray(to_lava(current))

    def run(self, steps: int) -> list[list[np.ndarray]]:
        """Run ``steps`` steps; per step, the probes' flat data (in :attr:`probes` order)."""
        self._start()
        try:
            for _ in range(steps):
                self.injector.send(self._zeros if self._pending is None else self._pending)
                self._pending = None
            run_checked(self.recorder, RunSteps(steps), self._config)
            self.steps_run += steps
            if self.fixed:
                for neuron in self.neurons.values():
                    raise_on_fault(neuron)
            return [self.recorder.receive() for _ in range(steps)]
        except BaseException as exc:
            self._stop_after(exc)
            raise

    def reset(self) -> None:
        """Return every state to its initial value at the next step (one small message each)."""
        if not self._started:
            return
        for proc in self.resettable:
            proc.epoch.set(proc.epoch.get() + 1)
        for dense in self.dense:
            dense.a_buff.set(np.zeros(dense.a_buff.shape))
        for sd in self.sigma_deltas.values():  # Lava's own process: no epoch, Vars set one by one
            for var in (sd.sigma, sd.act, sd.residue):
                var.set(np.zeros(var.shape))

    def _stop_after(self, exc: BaseException) -> None:
        """Stop the runtime once ``exc`` (Ctrl-C, a fault) ended a start-up or a run, so that its
        processes end and its shared memory is released; ``exc`` stays the error to see."""
        try:
            self.close()
        except Exception as failure:
            exc.add_note(f"stopping the Lava runtime failed too: {failure!r}")

    def close(self) -> None:
        """Stop the runtime: its processes end and its shared memory is released (idempotent)."""
        if self._started:
            self._started = False
            atexit.unregister(self._stop_at_exit)
            self.recorder.stop()
