"""The sigma-delta baseline: its neuron equals Lava's own SigmaDelta model step for step, the
network settles to its activation graph, its graded events are counted, and the CLI reports it."""

import json

import numpy as np
import pytest
import torch

from evals.run import main
from neurons.sigma_delta import initial_state, sigma_delta_step
from vistream_neuro import ir, pipeline
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import lower
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.sigma_delta import to_sigma_delta
from vistream_neuro.streaming import run_stream


@pytest.mark.parametrize("relu", [True, False])
def test_step_equals_lavas_sigma_delta_model(relu):
    from neurons.lava_compat import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.sdn.process import ActivationMode, SigmaDelta

    steps, threshold = 40, 0.3
    rng = np.random.default_rng(3)
    data = rng.normal(0, 0.4, (6, steps)) * (rng.random((6, steps)) < 0.5)
    source = Source(data=data)
    mode = ActivationMode.RELU if relu else ActivationMode.UNIT
    neuron = SigmaDelta(shape=(6,), vth=threshold, act_mode=mode)
    sink = Sink(shape=(6,), buffer=steps)
    source.s_out.connect(neuron.a_in)
    neuron.s_out.connect(sink.a_in)
    try:
        sink.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        lava_out = sink.data.get()
    finally:
        sink.stop()
    x = torch.from_numpy(data)
    sigma, act, residue = initial_state(x[:, 0])
    ours = []
    for t in range(steps):
        spike, sigma, act, residue = sigma_delta_step(x[:, t], sigma, act, residue,
                                                      torch.tensor(threshold), relu)
        ours.append(spike)
    np.testing.assert_allclose(lava_out, torch.stack(ours, 1).numpy(), rtol=0, atol=1e-12)
    assert np.count_nonzero(lava_out) > 10


def _frames(n=5, size=(32, 32)):
    torch.manual_seed(0)
    base = torch.rand(1, 3, *size, dtype=torch.float64)
    return [base + 0.05 * t * torch.randn(1, 3, *size, dtype=torch.float64) for t in range(n)]


def test_network_settles_to_its_activation_graph_and_counts_graded_events():
    frames = _frames()
    net = pipeline.convert_model("tiny", torch.cat(frames), 4)
    exact = to_sigma_delta(net.graph, 0.0)
    neurons = {m.name for m in net.graph.neurons}
    assert all(isinstance(n, ir.SigmaDelta) for n in exact.nodes if n.name in neurons)
    dense = lower(exact, "torch")
    counter = OpCounter(exact)
    runs = run_stream(lower(exact, "spikingjelly"), frames, ExecutionOptions(mode="locc"), counter)
    for frame, res in zip(frames, runs, strict=True):
        reference = dense.forward(frame)[exact.output]
        torch.testing.assert_close(res.output, reference, rtol=0, atol=1e-9)
        torch.testing.assert_close(res.output, net.ann(frame), rtol=0, atol=1e-9)  # tiny: ReLU, no cap
        assert res.converged and res.timesteps == 2  # delay-free: all in one step, then quiet
        ops = res.ops
        assert ops.total_spikes > 0 and all(v >= 0 for v in ops.spikes_neg.values())
        assert set(ops.spikes_pos) == {n.name for n in exact.sigma_deltas}
        assert ops.events[ir.INPUT] > 0
    coarse = to_sigma_delta(net.graph, 1.0)
    counter = OpCounter(coarse)
    runs = list(run_stream(lower(coarse, "spikingjelly"), frames, ExecutionOptions(mode="locc"), counter))
    assert runs[-1].ops.total_spikes < ops.total_spikes  # a threshold holds small changes back
    scale = max(float(np.max(n.scale)) for n in net.graph.neurons)
    assert (runs[-1].output - net.ann(frames[-1])).abs().max() < 50 * scale


def test_fixed_point_neurons_have_no_sigma_delta_form():
    graph = ir.SpikingGraph((4,), [ir.Neuron("n", ir.INPUT, np.array(4.0), 7, payload=np.array(3.0))], "n")
    with pytest.raises(ir.GraphError, match="n: a fixed-point neuron"):
        to_sigma_delta(graph)


def test_cli_reports_sigma_delta_and_hw_map(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--backend", "spikingjelly", "--task", "stream", "--compare", "--sigma-delta", "0.5",
                 "--hw-map", "loihi2", "--precision", "fixed", "--frames", "4", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    sd = report["summary"]["compare"]["sigma_delta"]
    # fixed precision runs the integer graph; the baseline runs the float one beside it
    assert report["precision"] == "fixed" and report["summary"]["compare"]["locc"]["level_mismatch_max"] == 0
    assert sd["threshold_factor"] == 0.5 and 0.9 < sd["cosine_to_ann"] <= 1 + 1e-9
    hw = report["hw_map"]
    assert hw["hardware"]["name"] == "loihi2" and hw["fits"] and hw["cores"] >= len(hw["layers"])
    assert set(hw["runs"]) == {"ann", "reset", "locc", "sigma_delta"}
    steady = {run: c["per_frame_steady"] for run, c in hw["runs"].items()}
    assert steady["locc"]["sops"] < steady["reset"]["sops"]
    assert all(s["energy_pj"] > 0 and s["latency_us"] > 0 for s in steady.values())
    header = (out / "hw_layers.csv").read_text().splitlines()[0]
    assert "energy_pj_sigma_delta" in header and (out / "hw_map.png").stat().st_size > 0
    assert "hw map loihi2" in capsys.readouterr().out
