"""The sigma-delta baseline exported to lava-dl netx runs, in netx, exactly what the Lava backend
runs on the same integer graph; what netx cannot express is refused naming the node.

Both are Lava fixed_pt runs of the same processes' arithmetic, so they agree per Lava step.  The
backend hands steps over in the delay-free time frame (node at depth ``d`` shifted by ``d``), so
netx's value at Lava step ``now + latency`` is compared with the backend's step; in the first step
after a reset the backend sums each probe over the Lava steps up to it (Lava's sigma-delta biases
act from the first step at every depth), and so does the comparison.  Compared: every sigma-delta
layer's messages per step, and the accumulated output per step (netx's sigma output plus the
output bias, which netx's ``Sigma`` cannot hold).
"""

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from tests.conftest import requires_lava
from vistream_neuro import ir
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import lower
from vistream_neuro.netx_export import NetxExportError, export_netx, to_netx
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.sigma_delta import to_sigma_delta
from vistream_neuro.streaming import run_stream

INPUT_UNIT, FACTOR = 1 / 64, 0.5


def small_cnn(bias: bool = True, signed: bool = False) -> ir.SpikingGraph:
    """conv3x3-ReLU, conv3x3 stride 2 (ReLU, or signed), flatten, linear head without neuron;
    per-channel scales, as the converter makes them."""
    rng = np.random.default_rng(0)

    def b(n):
        return rng.normal(0, 0.1, n) if bias else None

    return ir.SpikingGraph((3, 8, 8), [
        ir.Conv("c1", ir.INPUT, rng.normal(0, 0.4, (4, 3, 3, 3)), b(4), padding=(1, 1)),
        ir.Neuron("n1", "c1", rng.uniform(0.05, 0.2, 4), pos_max=15),
        ir.Conv("c2", "n1", rng.normal(0, 0.3, (6, 4, 3, 3)), b(6), stride=(2, 2), padding=(1, 1)),
        ir.Neuron("n2", "c2", rng.uniform(0.05, 0.2, 6), pos_max=15, neg_min=-8 if signed else 0),
        ir.Flatten("flat", "n2"),
        ir.Linear("fc", "flat", rng.normal(0, 0.2, (5, 96)), b(5)),
    ], "fc")


def frames(n: int = 5) -> list[torch.Tensor]:
    """A drifting image; frame 2 repeats frame 1 (no change: nothing may be sent)."""
    gen = torch.Generator().manual_seed(0)
    base, drift = torch.rand(1, 3, 8, 8, generator=gen), torch.rand(1, 3, 8, 8, generator=gen) - 0.5
    steps = [0, 1, 1, 2, 4, 5][:n]
    return [(base + 0.2 * k * drift).double() for k in steps]


class Recorded:
    """The simulator, recording each frame's first Lava step and every step's values and output."""

    def __init__(self, sim) -> None:
        self.sim, self.starts, self.steps = sim, [], []

    def __getattr__(self, name):
        return getattr(self.sim, name)

    def step(self, current) -> None:
        if current is not None:
            self.starts.append(self.sim.net.steps_run + 1)
        self.sim.step(current)
        values = {k: v.clone() for k, v in self.sim.step_values().items()}
        self.steps.append((values, self.sim.output().clone()))


def run_netx(path, data: np.ndarray) -> list[np.ndarray]:
    """Every netx layer's output per Lava step (last axis), for input ``data`` (netx layout + steps)."""
    from neurons.lava_compat import import_lava

    import_lava()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    net = netx.hdf5.Network(net_config=str(path))
    source = Source(data=data)
    source.s_out.connect(net.in_layer.neuron.a_in)  # as lava-dl's own netx tests drive it
    sinks = [Sink(shape=layer.out.shape, buffer=data.shape[-1]) for layer in net.layers]
    for layer, sink in zip(net.layers, sinks, strict=True):
        layer.out.connect(sink.a_in)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Lava's Conv runs torch in forked children
    try:
        net.run(condition=RunSteps(data.shape[-1]), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return [sink.data.get() for sink in sinks]
    finally:
        net.stop()
        torch.set_num_threads(threads)


def to_netx_layout(x: np.ndarray) -> np.ndarray:
    return x.transpose(2, 1, 0) if x.ndim == 3 else x


@requires_lava
def test_netx_runs_the_integer_graph_exactly_as_the_lava_backend(tmp_path):
    path = tmp_path / "baseline.net"
    float_graph = to_sigma_delta(small_cnn(), FACTOR)
    fx = export_netx(float_graph, path, INPUT_UNIT, threshold_factor=FACTOR)
    with h5py.File(path) as f:
        assert f.attrs["threshold_factor"] == FACTOR and f.attrs["input_unit"] == INPUT_UNIT
        assert "sigma-delta baseline" in f.attrs["description"]
        types = [f[f"layer/{i}/type"][()].decode() for i in range(len(f["layer"]))]
        assert types == ["input", "conv", "conv", "flatten", "dense"]
        assert [f[f"layer/{i}/neuron/vThMant"][()] for i in (1, 2)] == [
            fx.graph.node(n).threshold for n in ("n1", "n2")]
        assert np.array_equal(f["layer/1/weight"][()] * 64, fx.graph.node("c1").weight)
        output_bias = f["output_bias"][()]
    for node in fx.graph.nodes:
        if isinstance(node, ir.SYNAPTIC):
            weight = node.weight / (64 if node.name == "c1" else 1)
            assert np.all(weight % 2 == 0) and 0 < np.abs(weight).max() <= 126, node.name

    encoded = [fx.encode(x) for x in frames()]
    sim = Recorded(lower(fx.graph, "lava", ExecutionOptions(precision="fixed")))
    try:
        options = ExecutionOptions(t_max=100)
        results = list(run_stream(sim, encoded, options, OpCounter(fx.graph, options)))
    finally:
        sim.close()
    assert all(r.converged for r in results) and results[2].timesteps == 1
    assert results[2].ops.spikes_pos == {"n1": 0, "n2": 0} and results[0].ops.total_sops > 0
    latency, total = sim.net.latency, sim.net.steps_run

    data = np.zeros((*to_netx_layout(encoded[0][0].numpy()).shape, total))
    for start, x in zip(sim.starts, encoded, strict=True):
        data[..., start - 1:] = to_netx_layout(x[0].numpy())[..., None]
    *spikes, sigma = run_netx(path, data)[1:]  # after the input layer: n1, n2, fc

    steps = iter(sim.steps)
    for frame, (start, result) in enumerate(zip(sim.starts, results, strict=True)):
        for t in range(1, result.timesteps + 1):
            values, output = next(steps)
            now = start - 1 + t  # Lava step s is column s - 1
            for name, theirs in zip(("n1", "n2"), spikes, strict=True):
                at = now + latency[name]
                first = frame == 0 and t == 1  # merged: see the module docstring
                theirs = theirs[..., start - 1:at].sum(-1) if first else theirs[..., at - 1]
                assert np.array_equal(to_netx_layout(values[name][0].numpy()), theirs), (frame, t, name)
            theirs = sigma[:, now + latency["fc"] - 1] + output_bias
            assert np.array_equal(output[0].numpy(), theirs), (frame, t)

    reference = lower(float_graph, "torch")  # the float network the baseline approximates
    for x, result in zip(frames(), results, strict=True):
        want, got = reference.forward(x)["fc"].flatten(), fx.decode(result.output).flatten()
        assert torch.nn.functional.cosine_similarity(want, got, dim=0) > 0.98


@requires_lava
@pytest.mark.parametrize("mode", ["locc", "reset"])
def test_floating_pt_sigma_delta_runs_the_spikingjelly_schedule(mode):
    """Without biases (Lava's act from the first step at every depth, SpikingJelly's with the input),
    Lava's SigmaDelta gives SpikingJelly's outputs, time steps and counts; per-channel thresholds
    and an identity neuron included."""
    graph = to_sigma_delta(small_cnn(bias=False, signed=True), FACTOR)
    runs = []
    for backend in ("lava", "spikingjelly"):
        sim = lower(graph, backend)
        try:
            options = ExecutionOptions(mode=mode, t_max=100)
            runs.append(list(run_stream(sim, frames(), options, OpCounter(graph, options))))
        finally:
            sim.close()
    for res, ref in zip(*runs, strict=True):
        assert res.converged and res.timesteps == ref.timesteps and res.ops == ref.ops, res.index
        assert (res.output - ref.output).abs().max() <= 1e-9 * ref.output.abs().max(), res.index


@requires_lava
def test_fixed_pt_sigma_delta_beyond_24_bits_is_an_error_naming_the_neuron():
    fx = to_netx(to_sigma_delta(small_cnn(), FACTOR), INPUT_UNIT)
    sim = lower(fx.graph, "lava", ExecutionOptions(precision="fixed"))
    try:
        with pytest.raises(OverflowError, match="n1: input current at step 1"):
            list(run_stream(sim, [torch.full((1, 3, 8, 8), 2.0**12)], ExecutionOptions(mode="locc")))
    finally:
        sim.close()


def _replace(graph: ir.SpikingGraph, name: str, *nodes: ir.Node) -> ir.SpikingGraph:
    """``graph`` with node ``name`` replaced by ``nodes``."""
    new = [m for n in graph.nodes for m in ((n,) if n.name != name else nodes)]
    return ir.SpikingGraph(graph.input_shape, new, graph.output)


def _refusals():
    sd = to_sigma_delta(small_cnn(), FACTOR)
    n1 = sd.node("n1")
    c2 = sd.node("c2")
    yield "add", _replace(sd, "n1", n1, ir.Add("res", ("n1", "n1"))), "res: residual adds are unsupported"
    for pool in (ir.AvgPool, ir.MaxPool):
        graph = ir.SpikingGraph(sd.input_shape, [sd.node("c1"), n1, pool("pool", "n1", (2, 2), (2, 2)),
                                                 dataclasses.replace(c2, input="pool", stride=(1, 1))], "c2")
        yield pool.__name__, graph, "pool: netx .* implements no pooling"
    yield "stbif", small_cnn(), "n1: ST-BIF has no netx neuron type; export .*to_sigma_delta"
    yield "identity", to_sigma_delta(small_cnn(signed=True), FACTOR), "n2: netx's SDNN neuron is ReLU only"
    tiny = dataclasses.replace(n1, threshold=np.full(4, 1e-6))
    yield "weights", _replace(sd, "n1", tiny), "c1: weights cannot fit 8 bits"
    branch = _replace(sd, "c2", dataclasses.replace(c2, input="c1"))
    yield "branch", branch, "c2: reads 'c1', not the node before it"
    yield "output", ir.SpikingGraph(sd.input_shape, sd.nodes, "n2"), "output 'n2' is not the last node"


@pytest.mark.parametrize("case,graph,message", list(_refusals()), ids=[c[0] for c in _refusals()])
def test_what_netx_cannot_express_is_refused_naming_the_node(tmp_path, case, graph, message):
    path = tmp_path / "net.h5"
    path.write_bytes(b"old")
    with pytest.raises(NetxExportError, match=message) as error:
        export_netx(graph, path, INPUT_UNIT)
    assert isinstance(error.value, ir.GraphError)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["net.h5"]
