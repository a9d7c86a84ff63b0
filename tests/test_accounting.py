"""The SOP counter against brute force and SpikingJelly's SynOpCounter; report totals add up."""

import itertools
import json

import numpy as np
import pytest
import torch
from spikingjelly.activation_based.op_counter.base import DispatchCounterMode
from spikingjelly.activation_based.op_counter.synop import SynOpCounter

from evals.harness.config import EvalConfig
from evals.harness.stream import stream_compare
from evals.reports.report import build_report, layer_rows
from vistream_neuro import ir
from vistream_neuro.accounting import OpCounter, dense_macs, fanout
from vistream_neuro.backend import lower
from vistream_neuro.energy import MODELS, energy_model
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.streaming import run_stream


def brute_force_conv_sops(x: np.ndarray, node: ir.Conv) -> int:
    """Loop over every nonzero input event and every weight it touches."""
    c_in, h, w = x.shape
    out_c, in_per_group, kh, kw = node.weight.shape
    _, oh, ow = node.out_shape([x.shape])
    (sh, sw), (ph, pw) = node.stride, node.padding
    out_per_group = out_c // node.groups
    total = 0
    for c, y, xx in zip(*np.nonzero(x), strict=True):
        group = c // in_per_group
        for _out in range(group * out_per_group, (group + 1) * out_per_group):
            for oy, ox in itertools.product(range(oh), range(ow)):
                ky, kx = y + ph - oy * sh, xx + pw - ox * sw
                if 0 <= ky < kh and 0 <= kx < kw:
                    total += 1
    return total


CONVS = [
    dict(cin=3, cout=4, k=3, stride=1, pad=1, groups=1, size=(7, 6)),
    dict(cin=3, cout=6, k=3, stride=2, pad=1, groups=1, size=(9, 8)),
    dict(cin=4, cout=4, k=3, stride=2, pad=0, groups=4, size=(8, 7)),  # depthwise, leftover row
    dict(cin=4, cout=8, k=1, stride=1, pad=0, groups=2, size=(5, 5)),
    dict(cin=2, cout=3, k=5, stride=3, pad=2, groups=1, size=(11, 10)),
]


def _conv_node(cfg) -> ir.Conv:
    w = np.ones((cfg["cout"], cfg["cin"] // cfg["groups"], cfg["k"], cfg["k"]))
    return ir.Conv("c", "input", w, None, (cfg["stride"],) * 2, (cfg["pad"],) * 2, cfg["groups"])


@pytest.mark.parametrize("cfg", CONVS)
def test_conv_sops_equal_brute_force(cfg):
    node = _conv_node(cfg)
    graph = ir.SpikingGraph((cfg["cin"], *cfg["size"]), [node], "c")
    rng = np.random.default_rng(0)
    events = rng.choice([-1.0, 0.0, 0.0, 1.0], size=(cfg["cin"], *cfg["size"]))
    expected = brute_force_conv_sops(events, node)
    fan = torch.from_numpy(fanout(node, graph.input_shape))
    assert float((torch.from_numpy(events != 0).double() * fan).sum()) == expected
    counter = OpCounter(graph)
    counter.count_step({"input": torch.from_numpy(events)[None], "c": torch.zeros(1)})
    assert counter.take_frame({}).input_macs == {"c": expected}


def test_linear_and_spike_fed_layers():
    rng = np.random.default_rng(1)
    graph = ir.SpikingGraph((5,), [
        ir.Neuron("n", "input", np.array(0.5), 7, -8),
        ir.Linear("fc", "n", rng.standard_normal((3, 5))),
    ], "fc")
    counter = OpCounter(graph)
    spikes = torch.tensor([[0.5, 0.0, -0.5, 0.0, 0.5]], dtype=torch.float64)
    current = torch.tensor([[1.0, 0.0, -1.0, 0.3, 1.0]], dtype=torch.float64)
    counter.count_step({"input": current, "n": spikes, "fc": torch.zeros(1, 3)})
    ops = counter.take_frame({"n": torch.tensor([[1.0, 0.0, -1.0, 0.0, 1.0]])})
    assert ops.sops == {"fc": 3 * 3} and ops.input_macs == {}
    assert ops.spikes_pos == {"n": 2} and ops.spikes_neg == {"n": 1}
    assert ops.updates_event == {"n": 4} and ops.updates_dense == {"n": 5}


@pytest.mark.parametrize("cfg", CONVS[:4])
def test_agrees_with_spikingjelly_synop_counter_on_binary_spikes(cfg):
    node = _conv_node(cfg)
    graph = ir.SpikingGraph((cfg["cin"], *cfg["size"]), [node], "c")
    rng = np.random.default_rng(2)
    spikes = torch.from_numpy((rng.random((1, cfg["cin"], *cfg["size"])) < 0.3).astype(np.float32))
    conv = torch.nn.Conv2d(cfg["cin"], cfg["cout"], cfg["k"], cfg["stride"], cfg["pad"],
                           groups=cfg["groups"], bias=False)
    sj = SynOpCounter()
    with DispatchCounterMode([sj]):
        conv(spikes)
    counter = OpCounter(graph)
    counter.count_step({"input": spikes.double(), "c": torch.zeros(1)})
    assert counter.take_frame({}).input_macs["c"] == sj.get_total()


def test_dense_macs_of_a_conv():
    node = _conv_node(CONVS[1])
    graph = ir.SpikingGraph((3, 9, 8), [node], "c")
    assert dense_macs(graph) == {"c": 6 * 5 * 4 * 3 * 9}


def test_minimum_spikes_follow_level_changes():
    graph = ir.SpikingGraph((2,), [ir.Neuron("n", "input", np.array(1.0), 7, -8)], "n")
    sim = lower(graph, "spikingjelly")
    frames = [torch.tensor([[3.0, -2.0]]), torch.tensor([[1.0, -2.0]]), torch.tensor([[1.4, 2.0]])]
    results = list(run_stream(sim, frames, ExecutionOptions(mode="locc"), OpCounter(graph)))
    assert [r.ops.min_spikes["n"] for r in results] == [5, 2, 4]
    assert [r.ops.total_spikes for r in results] == [5, 2, 4]  # a lone neuron never overshoots


def test_energy_models_are_data_with_sources():
    assert set(MODELS) == {"45nm_fp32", "45nm_int8", "loihi"}
    assert energy_model("45nm_fp32").mac_pj == pytest.approx(4.6)
    assert energy_model("45nm_fp32").sop_pj == pytest.approx(0.9)
    assert all(m.source for m in MODELS.values())
    with pytest.raises(ValueError, match="45nm_fp32"):
        energy_model("tpu")


@pytest.fixture(scope="module")
def mobilenet_compare():
    config = EvalConfig(backend="spikingjelly", model="mobilenetv2", frames=4, compare=True,
                        input_size=(64, 32))
    return config, stream_compare(config)


def test_mobilenet_report_totals_are_sums_of_layers_and_frames(mobilenet_compare, tmp_path):
    config, result = mobilenet_compare
    report = json.loads(json.dumps(build_report(config, result)))
    locc = result.runs["locc"]
    for record, frame in zip(locc, report["frames"], strict=True):
        assert frame["sops"] == sum(record.ops.sops.values())
        assert frame["spikes"] == frame["spikes_pos"] + frame["spikes_neg"]
    mean_sops = np.mean([f["sops"] for f in report["frames"]])
    assert report["summary"]["sops_per_frame"] == pytest.approx(mean_sops)
    rows = [r for r in layer_rows(result) if r["mode"] == "locc"]
    assert sum(r["sops_first_frame"] for r in rows if not r["analog_input"]) == report["frames"][0]["sops"]
    assert sum(r["spikes_pos"] + r["spikes_neg"] for r in rows) == sum(f["spikes"] for f in report["frames"])
    assert report["summary"]["ann_macs_per_frame"] == sum(dense_macs(result.graph).values())


def test_reset_and_locc_agree_on_outputs_but_not_on_cost(mobilenet_compare):
    _, result = mobilenet_compare
    reset, locc = result.runs["reset"], result.runs["locc"]
    assert all(r.max_abs_err < 1e-9 and r.level_mismatch == 0 for r in reset + locc)
    assert reset[0].ops.sops == locc[0].ops.sops  # the first LoCC frame is a reset frame
    assert reset[0].ops.input_macs == locc[0].ops.input_macs
    assert all(r.ops.total_sops != s.ops.total_sops for r, s in zip(reset[1:], locc[1:], strict=True))


def test_a_frames_counts_are_compact_and_read_like_dicts(mobilenet_compare):
    """A run keeps every frame's per-layer counts: as one int64 array per kind beside layer names
    shared by all frames, far smaller than dicts of Python ints, and read the same way."""
    import tracemalloc

    from vistream_neuro.accounting import FrameOps

    _, result = mobilenet_compare
    ops = result.runs["locc"][1].ops
    kinds = ("sops", "input_macs", "spikes_pos", "spikes_neg", "updates_dense", "updates_event",
             "min_spikes", "events")
    as_dicts = [dict(getattr(ops, k).items()) for k in kinds]
    for kind, counts in zip(kinds, as_dicts, strict=True):
        assert getattr(ops, kind) == counts and dict(getattr(ops, kind)) == counts
    assert ops.layer_cost(next(iter(ops.sops))) == next(iter(as_dicts[0].values()))

    def per_frame(build) -> float:
        tracemalloc.start()
        kept = [build() for _ in range(100)]
        size = tracemalloc.get_traced_memory()[0] / len(kept)
        tracemalloc.stop()
        return size

    shared: dict = {}
    compact = per_frame(lambda: FrameOps(ops.timesteps, *[dict(d) for d in as_dicts], shared=shared))
    plain = per_frame(lambda: [dict(d) for d in as_dicts])
    assert compact < plain / 2, (compact, plain)  # the dicts here even share their int objects
