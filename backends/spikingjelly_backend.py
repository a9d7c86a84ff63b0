"""``spikingjelly`` backend: the graph's ST-BIF (or sigma-delta) neurons on SpikingJelly (CPU or CUDA)."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import functional
from torch import nn

from neurons.sj_sigma_delta import SigmaDeltaNeuron
from neurons.sj_stbif import STBIFNeuron
from vistream_neuro import ir
from vistream_neuro.backend import Backend
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.torch_graph import TorchGraph, max_pool, payload_for, per_channel, scale_for

CPU_CHUNK = 8  # steps per layer call on the CPU, where layers skip the chunks they are quiet in
# On a GPU a call costs about its launch, so a chunk holds up to 64 steps (most frames settle in
# one) as long as its rows hold at most this many input pixels (memory: every node keeps its rows).
CUDA_CHUNK_PIXELS = 64 * 240 * 320


class SpikingJellySimulator:
    """``schedule``: ``timestep`` (every layer advances one step together, ViStream) or
    ``layerwise`` (in one step each layer takes all its input and fires until quiet, in graph
    order: every neuron sends exactly its change of level, and a frame settles in one step)."""

    def __init__(self, graph: ir.SpikingGraph, device: torch.device, dtype: torch.dtype,
                 schedule: str = "timestep") -> None:
        self.graph, self.schedule = graph, schedule
        self.net = TorchGraph(graph, device, dtype)
        self.neurons = nn.ModuleDict({
            n.name: STBIFNeuron(scale_for(n, graph.shapes[n.name], "cpu", torch.float64),
                                n.pos_max, n.neg_min, step_mode="s",
                                payload=payload_for(n, graph.shapes[n.name], "cpu", torch.float64),
                                hysteresis=n.hysteresis)
            for n in graph.neurons
        } | {
            n.name: SigmaDeltaNeuron(per_channel(n.threshold, graph.shapes[n.name], "cpu", torch.float64),
                                     n.relu)
            for n in graph.sigma_deltas
        }).to(device)
        self.reset()

    def reset(self) -> None:
        functional.reset_net(self.neurons)
        self._pool_in: dict[str, torch.Tensor] = {}
        self._pool_out: dict[str, torch.Tensor] = {}
        self._bias_pending = True
        self._out: torch.Tensor | None = None
        self._values: dict[str, torch.Tensor] = {}
        self._zero: torch.Tensor | None = None

    def _fire(self, node: ir.Neuron | ir.SigmaDelta, current: torch.Tensor) -> torch.Tensor:
        if self.schedule == "layerwise" and isinstance(node, ir.Neuron):
            return self.neurons[node.name].settle(current)
        return self.neurons[node.name](current)

    def _max_pool(self, node: ir.MaxPool, current: torch.Tensor) -> torch.Tensor:
        """Pool the accumulated input; emit the change of the pooled value."""
        total = self._pool_in.get(node.name, 0) + current
        pooled = max_pool(node, total)
        change = pooled - self._pool_out[node.name] if node.name in self._pool_out else pooled
        self._pool_in[node.name], self._pool_out[node.name] = total, pooled
        return change

    @torch.no_grad()
    def step(self, current: torch.Tensor | None) -> None:
        if current is None:
            if self._zero is None:
                raise RuntimeError("the first step after reset needs an input to fix the shape")
            current = self._zero
        else:
            current = current.to(self.net.device, self.net.dtype)
            self._zero = torch.zeros_like(current)
        handlers = {ir.Neuron: self._fire, ir.SigmaDelta: self._fire, ir.MaxPool: self._max_pool}
        values = self.net.run(current, handlers, with_bias=self._bias_pending)
        self._bias_pending = False
        self._values = values
        out = values[self.net.graph.output]
        self._out = out.clone() if self._out is None else self._out + out

    def is_quiet(self) -> bool:
        return bool(torch.stack([n.quiet for n in self.neurons.values()]).all())

    def output(self) -> torch.Tensor:
        if self._out is None:
            raise RuntimeError("no output before the first step")
        return self._out

    def levels(self) -> dict[str, torch.Tensor]:
        return {name: n.acc for name, n in self.neurons.items() if isinstance(n, STBIFNeuron)}

    def step_values(self) -> dict[str, torch.Tensor]:
        return self._values

    def close(self) -> None:
        """Nothing lives outside this process."""


class MultiStepSimulator(SpikingJellySimulator):
    """The ``timestep`` schedule, executed a chunk of ``chunk`` steps at a time, layer by layer.

    A feed-forward layer at step ``t`` depends only on the layers below at steps <= ``t``, so each
    layer takes all steps of a chunk at once (one convolution over ``chunk x batch`` rows, then its
    neurons step through them), and the host looks once per chunk for the first step in which no
    neuron sent anything, where the frame ends as in :meth:`step`-by-step execution.  On CUDA each
    layer's neurons take the chunk in one call of SpikingJelly's fused ST-BIF kernel.

    With ``skip_quiet`` a layer whose input is zero over a chunk while its neurons are quiet does
    nothing, and zeros pass through the stateless operators uncomputed.  Finding that out costs a
    host synchronisation per layer, which on a GPU costs more than the work it saves, so there
    the default is off and the chunk long (most frames fit in one; ``chunk=None`` sizes it per
    frame).  Outputs, states and counted operations equal stepping one step at a time: nothing
    changes after a step in which every neuron is quiet.
    """

    def __init__(self, graph: ir.SpikingGraph, device: torch.device, dtype: torch.dtype,
                 chunk: int | None = None, skip_quiet: bool | None = None) -> None:
        super().__init__(graph, device, dtype, "timestep")
        on_gpu = self.net.device.type == "cuda"
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.chunk = CPU_CHUNK if chunk is None and not on_gpu else chunk  # None: sized per frame
        self.skip_quiet = not on_gpu if skip_quiet is None else skip_quiet
        self._k = 1  # steps in the chunk being run
        self._sent: list[torch.Tensor] = []  # per layer that sent anything in it: which steps

    def _quiet_input(self, node: ir.Node, current: torch.Tensor) -> bool:
        neuron = self.neurons[node.name]
        idle = neuron.spike is None or not neuron.spike.any()
        return idle and (self.net.is_zero(current) or not current.any())

    def _fire_chunk(self, node: ir.Neuron | ir.SigmaDelta, current: torch.Tensor) -> torch.Tensor:
        """The neurons through the chunk's steps; which steps they sent anything in goes to
        ``self._sent`` (a quiet layer's output is the shared zeros)."""
        if self.skip_quiet and self._quiet_input(node, current):
            return self.net.zeros(tuple(current.shape))
        out = self.neurons[node.name].multi_step_forward(current.unflatten(0, (self._k, -1)))
        sent = out.flatten(1).any(1)
        if self.skip_quiet and not sent.any():
            return self.net.zeros(tuple(current.shape))
        self._sent.append(sent)
        return out.flatten(0, 1)

    def _max_pool_chunk(self, node: ir.MaxPool, current: torch.Tensor) -> torch.Tensor:
        if self.net.is_zero(current):  # the pooled sum does not change
            return self.net.zeros((current.shape[0], *self.net.graph.shapes[node.name]))
        return torch.cat([self._max_pool(node, x) for x in current.chunk(self._k)])

    def _chunk_for(self, current: torch.Tensor) -> int:
        if self.chunk is not None:
            return self.chunk
        return min(64, max(8, CUDA_CHUNK_PIXELS // current[0, 0].numel() // current.shape[0]))

    @torch.no_grad()
    def run_frame(self, current: torch.Tensor, t_max: int, counter=None) -> tuple[int, bool]:
        """Run one frame (``current`` at its first step) until quiet or ``t_max`` steps; count its
        operations with ``counter``.  Returns the steps taken and whether the frame went quiet."""
        current = current.to(self.net.device, self.net.dtype)
        n, steps = current.shape[0], 0
        handlers = {ir.Neuron: self._fire_chunk, ir.SigmaDelta: self._fire_chunk,
                    ir.MaxPool: self._max_pool_chunk}
        chunk = self._chunk_for(current)
        while steps < t_max:
            self._k = k = min(chunk, t_max - steps)
            if steps == 0:
                x = torch.cat([current, current.new_zeros((k - 1) * n, *current.shape[1:])])
            else:
                x = self.net.zeros((k * n, *current.shape[1:]))
            self._sent = []
            values = self.net.run(x, handlers, with_bias=self._bias_pending, steps=k)
            self._bias_pending = False
            quiet_steps = ((~torch.stack(self._sent).any(0)).nonzero() if self._sent
                           else torch.zeros(1, 1, dtype=torch.long))
            used = int(quiet_steps[0]) + 1 if len(quiet_steps) else k
            out = values[self.net.graph.output].unflatten(0, (k, n))[:used].sum(0)
            self._out = out if self._out is None else self._out + out
            self._values = values
            if counter is not None:
                counter.count_step(values, steps=used)  # the steps after a quiet one are all zero
            steps += used
            if len(quiet_steps):
                return steps, True
        return steps, False


def _lower(graph: ir.SpikingGraph, options: ExecutionOptions, dtype: torch.dtype) -> SpikingJellySimulator:
    """``options.multistep``: run the ``timestep`` schedule a chunk of steps at a time (same
    results, faster)."""
    device = torch.device(options.device)
    if options.multistep and options.schedule == "timestep":
        return MultiStepSimulator(graph, device, dtype)
    return SpikingJellySimulator(graph, device, dtype, options.schedule)


BACKEND = Backend("spikingjelly", _lower, devices=("cpu", "cuda"), hysteresis=True)
