"""ViStream's op-counting convention beside ours, hand-checked on an 8->16 3x3 conv (padding 1,
16x16, with a bias: 1,152 MACs + 16 bias ops per output pixel, 299,008 dense ops in all)."""

import json

import numpy as np
import pytest
import torch

from evals.run import main
from vistream_neuro import ir
from vistream_neuro.accounting import OpCounter
from vistream_neuro.vistream_ops import AC_PJ, MAC_PJ, summary

DENSE = (8 * 9 * 16 + 16) * 16 * 16  # 299,008
INTERIOR = [(c, 5, 2 + c) for c in range(8)] + [(0, 9, 9), (3, 12, 4)]  # 10 events, full 3x3 windows
CORNERS = [(1, 0, 0), (6, 15, 15)]  # 2 events reaching 2x2 output pixels each


def _graph(neuron: bool = False) -> ir.SpikingGraph:
    rng = np.random.default_rng(0)
    conv = ir.Conv("c", ir.INPUT, rng.normal(size=(16, 8, 3, 3)), rng.normal(size=16), (1, 1), (1, 1))
    nodes = [conv] + ([ir.Neuron("n", "c", np.asarray(0.5), pos_max=7)] if neuron else [])
    return ir.SpikingGraph((8, 16, 16), nodes, nodes[-1].name)


def _step(counter: OpCounter, x: torch.Tensor, graph: ir.SpikingGraph) -> None:
    values = {ir.INPUT: x[None], "c": torch.zeros(1, 16, 16, 16, dtype=torch.float64)}
    if "n" in graph.shapes:
        values["n"] = torch.zeros(1, 16, 16, 16, dtype=torch.float64)
    counter.count_step(values)


def _ternary() -> torch.Tensor:
    x = torch.zeros(8, 16, 16, dtype=torch.float64)
    for i, (c, y, xx) in enumerate(INTERIOR + CORNERS):
        x[c, y, xx] = 0.25 if i % 3 else -0.25
    return x


def _frame(counter: OpCounter, graph, *inputs):
    for x in inputs:
        _step(counter, x, graph)
    return counter.take_frame({k: torch.zeros(1, *graph.shapes[k]) for k in graph.shapes if k == "n"})


def test_ternary_input_is_dense_ops_times_the_mean_rate():
    graph = _graph()
    ops = _frame(OpCounter(graph), graph, _ternary())
    assert ops.input_macs["c"] == 10 * 9 * 16 + 2 * 4 * 16  # ours: 1,568, exact at the borders
    v = summary([ops.vistream])["ops_per_frame"]
    assert v["acs"] == pytest.approx(DENSE * 12 / 2048) == 146 * 12  # 1,752: every event alike
    assert v["macs"] == 0 and v["bias_ops"] == pytest.approx(16 * 256 * 12 / 2048)


def test_a_summed_spike_train_is_charged_dense_macs():
    graph = _graph()
    x = torch.zeros(8, 16, 16, dtype=torch.float64)
    x[0, 3, 3], x[2, 7, 1], x[5, 10, 10] = 1.0, 2.0, 3.0  # four distinct values with the zeros
    result = summary([_frame(OpCounter(graph), graph, x).vistream])
    assert result["ops_per_frame"]["macs"] == DENSE and result["ops_per_frame"]["acs"] == 0
    assert result["layers_as_macs"] == ["c"]
    assert result["energy_pj_per_frame"] == pytest.approx(DENSE * MAC_PJ)


def test_macs_vanish_once_a_layer_also_saw_spikes():
    """A layer is priced by its MACs only at a 100% rate over the run: one analog frame and one
    of spikes give (1 + r) / 2, so only the spikes' ACs are charged."""
    graph = _graph()
    counter = OpCounter(graph)
    analog = torch.rand(8, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    frames = [_frame(counter, graph, analog).vistream, _frame(counter, graph, _ternary()).vistream]
    v = summary(frames)["ops_per_frame"]
    assert v["macs"] == 0 and v["acs"] == pytest.approx(146 * 12 / 2)
    assert v["macs_dropped"] == DENSE / 2 and v["non_spike_calls"] == 0.5


def test_every_neuron_costs_one_ac_per_step_and_zero_steps_cost_no_synaptic_ops():
    graph = _graph(neuron=True)
    zero = torch.zeros(8, 16, 16, dtype=torch.float64)
    v = summary([_frame(OpCounter(graph), graph, _ternary(), zero, zero).vistream])
    assert v["ops_per_frame"]["acs_neuron"] == 16 * 16 * 16 * 3
    assert v["ops_per_frame"]["acs_synaptic"] == pytest.approx(146 * 12)
    assert v["energy_pj_per_frame"] == pytest.approx(AC_PJ * (16 * 16 * 16 * 3 + 146 * 12))


def test_every_run_summary_carries_the_vistream_convention(tmp_path):
    out = tmp_path / "run"
    assert main(["--backend", "spikingjelly", "--task", "stream", "--frames", "3", "--input-size", "16x16",
                 "--compare", "--out", str(out)]) == 0
    summary_ = json.loads((out / "report.json").read_text())["summary"]
    for name in ("reset", "locc"):
        entry = summary_["compare"][name]
        ops = entry["vistream_ops_per_frame"]
        assert ops["macs"] > 0 and ops["acs_neuron"] > 0 and ops["total"] == ops["macs"] + ops["acs"]
        energy = ops["macs"] * MAC_PJ + ops["acs"] * AC_PJ
        assert entry["vistream_energy_pj_per_frame"] == pytest.approx(energy)
        assert entry["vistream_layers_as_macs"] == ["stem_0_0"]  # the analog input's layer, every frame
    assert "vistream_ops_per_frame" in summary_
