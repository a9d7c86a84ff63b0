"""SANA-FE (sanafe, installed by `make install`) replays a run's recorded spikes on its Loihi model:
every neuron sends exactly the spikes the run sent, the synaptic events are the ones we count, and
SANA-FE's energies and latencies are positive."""

import pytest
import torch
from torch import nn

from backends.sanafe_sim import replay
from vistream_neuro.hardware import hardware_model
from vistream_neuro.hw_mapping import Mapper
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import convert
from vistream_neuro.runner import Lockstep, comparison_runs
from vistream_neuro.spike_trains import ReplayError, SpikeRecorder


class Residual(nn.Module):
    """conv-ReLU, a residual block (3x3 conv-ReLU + skip), global pooling and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, 1, 1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        x = self.stem(x)
        return self.head(torch.relu(self.block(x) + x))


@pytest.fixture(scope="module")
def recorded():
    torch.manual_seed(0)
    frames = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    frames[1:] = frames[0] + 0.05 * torch.rand(2, 3, 8, 8, dtype=torch.float64)  # small changes after frame 0
    net = convert(Residual().eval(), frames)
    runs = comparison_runs(net, ExecutionOptions(mode="locc"))
    runner = Lockstep(net, runs, "torch", record="locc")
    for _ in runner.run(frames):
        pass
    return runner.finish()


def test_recorded_trains_are_the_counted_spikes(recorded):
    trains, records = recorded.spike_trains, recorded.runs["locc"]
    assert len(trains) == len(records) == 3
    for frame, record in zip(trains, records, strict=True):
        assert record.level_mismatch == 0
        assert len(frame.steps) == record.timesteps
        for name in record.ops.spikes_pos:
            assert frame.count(name) == record.ops.spikes_pos[name] + record.ops.spikes_neg[name]
        assert frame.count("input") == record.ops.events["input"]


def test_sanafe_replay_sends_our_spikes_and_prices_them(recorded):
    mapper = Mapper(recorded.graph, hardware_model("loihi1"))
    run = replay(mapper, recorded.spike_trains)
    for k, (frame, record) in enumerate(zip(recorded.spike_trains, recorded.runs["locc"], strict=True)):
        sent = record.ops.total_spikes + record.ops.events["input"]
        assert run.neurons_fired[k] == sent > 0  # spikes in == spikes out, every frame
        # one synaptic event per spike and explicit synapse, as the mapper prices them: the SOPs and the
        # input's MACs of the layers on chip, one per spike through a residual skip
        assert run.synaptic_events[k] == mapper.frame_cost(record.ops)["sops"]
        assert run.timesteps[k] == len(frame.steps)
        assert run.energy_j[k] > 0 and run.latency_s[k] > 0
    assert set(run.layer_energy_j) == set(mapper.layers) and all(e > 0 for e in run.layer_energy_j.values())
    # the steady frames send fewer spikes than the first, full one, and cost less on SANA-FE too
    assert run.energy_j[2] < run.energy_j[0]


def test_replay_needs_one_spike_per_neuron_and_step(recorded):
    options = ExecutionOptions(mode="locc", schedule="layerwise")
    with pytest.raises(ReplayError, match="--schedule timestep with --spikes ternary"):
        SpikeRecorder(recorded.graph, options)


def test_replay_refuses_a_graded_spike_chip(recorded):
    with pytest.raises(ReplayError, match="loihi.yaml is Loihi 1"):
        replay(Mapper(recorded.graph, hardware_model("loihi2")), recorded.spike_trains)


def test_cli_reports_sanafe_beside_the_mapper(tmp_path):
    import json

    from evals.run import main

    out = tmp_path / "run"
    assert main(["--backend", "torch", "--task", "stream", "--frames", "2", "--input-size", "16x16",
                 "--hw-map", "loihi1", "--hw-sim", "sanafe", "--out", str(out)]) == 0
    section = json.loads((out / "report.json").read_text())["hw_map"]["sanafe"]
    assert section["frames"] == 2 and section["run"] == "locc"
    for key in ("energy_j_per_frame", "latency_s_per_frame", "own_energy_j_per_frame",
                "own_latency_s_per_frame"):
        assert section[key] > 0
    assert set(section["layers"]) and (out / "sanafe_layers.png").stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (["--hw-sim", "sanafe"], "--hw-sim sanafe needs --hw-map loihi1"),
    (["--hw-sim", "sanafe", "--hw-map", "loihi2"], "--hw-sim sanafe needs --hw-map loihi1"),
    (["--hw-sim", "sanafe", "--hw-map", "loihi1", "--schedule", "layerwise"], "--schedule timestep"),
])
def test_cli_refuses_what_sanafe_cannot_replay(tmp_path, capsys, args, message):
    from evals.run import main

    assert main(["--backend", "torch", "--task", "stream", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_sanafe_preset_prices_events_as_sanafe(recorded):
    """With SANA-FE's per-event figures the mapper's synaptic and neuron energies are SANA-FE's."""
    hw = hardware_model("loihi1_sanafe")
    assert (hw.sop_pj, hw.neurons_per_core) == (35.5, 1024) and hw.neuron_update_pj == pytest.approx(72.8)
    mapper = Mapper(recorded.graph, hw)
    run = replay(mapper, recorded.spike_trains)
    ours = mapper.frame_cost(recorded.runs["locc"][0].ops)
    assert run.energy_parts_j["synapse"] / len(run.energy_j) == pytest.approx(
        sum(mapper.frame_cost(r.ops)["sops"] for r in recorded.runs["locc"]) * hw.sop_pj * 1e-12 / 3)
    assert ours["energy_pj"] > 0
