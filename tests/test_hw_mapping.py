"""Hardware mapping on hand-checked small graphs: core counts at the limits, synapse counts, a layer
that fits no core, messages, and the price of a frame."""

import dataclasses

import numpy as np
import pytest
import torch

from vistream_neuro import ir
from vistream_neuro.accounting import FrameOps
from vistream_neuro.hardware import PRESETS, hardware_model
from vistream_neuro.hw_mapping import Mapper, MappingError, dense_frame_ops
from vistream_neuro.sigma_delta import to_sigma_delta


def roomy(**limits):
    """Loihi 2 with limits that do not bind unless a test sets them."""
    loose = {"neurons_per_core": 10**6, "max_input_axons": 10**6, "max_output_axons": 10**6,
             "synaptic_memory_bits": 10**9}
    return dataclasses.replace(hardware_model("loihi2"), **(loose | limits))


def conv_graph(channels=4) -> ir.SpikingGraph:
    """input (1, 8, 8) -> conv 3x3 pad 1 -> ST-BIF (channels, 8, 8)."""
    weight = np.ones((channels, 1, 3, 3))
    return ir.SpikingGraph((1, 8, 8), [ir.Conv("conv", ir.INPUT, weight, None, (1, 1), (1, 1)),
                                       ir.Neuron("n", "conv", np.array(1.0), 7)], "n")


def test_presets_name_a_source_for_every_value():
    for name in PRESETS:
        hw = hardware_model(name)
        values = set(hw.describe()) - {"name", "sources", "estimates"}
        assert values <= set(hw.sources), f"{name}: no source for {values - set(hw.sources)}"
        assert hw.estimates <= values
    assert hardware_model("loihi2").neurons_per_core == 8192
    with pytest.raises(ValueError, match="unknown hardware model 'loihi9'"):
        hardware_model("loihi9")


def test_core_count_at_the_neuron_limit():
    # 256 neurons: 64 per core fit in 4 cores; with 63 the best block is 48 neurons (e.g. 4x3x4), 6 cores
    assert Mapper(conv_graph(), roomy(neurons_per_core=64)).layers["n"].cores == 4
    below = Mapper(conv_graph(), roomy(neurons_per_core=63)).layers["n"]
    assert below.cores == 6 and np.prod(below.block) <= 63


def test_synapses_exact_at_borders_and_shared_kernels():
    layer = Mapper(conv_graph(), roomy()).layers["n"]
    # per output channel and dimension, 8 rows x 3 taps minus the 2 padded ones: 22 x 22 synapses
    assert layer.fan_in == 9 and layer.synapses == 4 * 22 * 22 and layer.shared_weights == 36


def test_input_axon_limit_splits_the_map():
    # a whole 8x8 map needs the whole 8x8 input (64 axons); 3x3 windows of 4x8 output rows need 6x8
    assert Mapper(conv_graph(), roomy(max_input_axons=64)).layers["n"].cores == 1
    split = Mapper(conv_graph(), roomy(max_input_axons=63)).layers["n"]
    assert split.cores == 2 and split.input_axons == 6 * 8


def test_memory_with_and_without_weight_sharing():
    bits = 8
    shared = Mapper(conv_graph(), roomy(weight_bits=bits)).layers["n"]
    assert shared.memory_bits == 36 * bits
    explicit = Mapper(conv_graph(), roomy(weight_bits=bits, weight_sharing=False)).layers["n"]
    assert explicit.memory_bits == 256 * 9 * bits
    tight = Mapper(conv_graph(), roomy(weight_bits=bits, weight_sharing=False,
                                       synaptic_memory_bits=256 * 9 * bits - 1)).layers["n"]
    assert tight.cores == 2


def test_a_layer_too_wide_for_any_core_is_reported_with_its_limit():
    graph = ir.SpikingGraph((5000,), [ir.Linear("fc", ir.INPUT, np.ones((3, 5000))),
                                      ir.Neuron("n", "fc", np.array(1.0), 7)], "n")
    mapper = Mapper(graph, hardware_model("loihi2"))
    assert mapper.layers["n"].violations == ["max_input_axons: one neuron needs 5000 > 4096"]
    assert mapper.summary()["fits"] is False


def test_binary_spike_chips_need_two_axons_per_ternary_source():
    graph = ir.SpikingGraph((1, 8, 8), [*conv_graph(1).nodes,
                                        ir.Conv("conv2", "n", np.ones((1, 1, 1, 1))),
                                        ir.Neuron("m", "conv2", np.array(1.0), 7)], "m")
    graded = Mapper(graph, roomy(payload_bits=8)).layers["m"]
    binary = Mapper(graph, roomy(payload_bits=0)).layers["m"]
    assert binary.input_axons == 2 * graded.input_axons
    sd = Mapper(to_sigma_delta(graph), roomy(payload_bits=0))
    assert any("payload_bits" in v for v in sd.layers["m"].violations)


def test_messages_reach_each_destination_core_once():
    # n (1x8x8) -> linear over all 64 -> m (12 features) split 4 per core: every spike reaches 3 cores
    graph = ir.SpikingGraph((1, 8, 8), [*conv_graph(1).nodes, ir.Flatten("flat", "n"),
                                        ir.Linear("fc", "flat", np.ones((12, 64))),
                                        ir.Neuron("m", "fc", np.array(1.0), 7)], "m")
    mapper = Mapper(graph, roomy(neurons_per_core=4))
    assert mapper.layers["m"].cores == 3
    assert mapper.layers["n"].dest_cores == pytest.approx(3.0)
    # a residual skip is one synapse: one destination core per spike
    skip = ir.SpikingGraph((1, 8, 8), [*conv_graph(1).nodes, ir.Conv("c2", "n", np.ones((1, 1, 1, 1))),
                                       ir.Add("add", ("c2", "n")), ir.Neuron("m", "add", np.array(1.0), 7)],
                           "m")
    layer = Mapper(skip, roomy()).layers["n"]
    assert layer.dest_cores == pytest.approx(2.0)  # one core of m, reached by the conv and by the skip


def test_output_route_limit_shrinks_the_source_blocks():
    graph = ir.SpikingGraph((1, 8, 8), [*conv_graph(1).nodes, ir.Flatten("flat", "n"),
                                        ir.Linear("fc", "flat", np.ones((12, 64))),
                                        ir.Neuron("m", "fc", np.array(1.0), 7)], "m")
    mapper = Mapper(graph, roomy(neurons_per_core=4, max_output_axons=30))
    # each spike of n needs 3 routes; 30 routes per core allow 10 neurons, so blocks of <= 10
    assert np.prod(mapper.layers["n"].block) * 3 <= 30
    assert mapper.summary()["fits"]


def test_two_synaptic_layers_in_series_cannot_be_placed():
    graph = ir.SpikingGraph((1, 8, 8), [ir.Conv("a", ir.INPUT, np.ones((1, 1, 3, 3))),
                                        ir.Conv("b", "a", np.ones((1, 1, 3, 3))),
                                        ir.Neuron("n", "b", np.array(1.0), 7)], "n")
    with pytest.raises(MappingError, match="b: two synaptic layers in series"):
        Mapper(graph, hardware_model("loihi2"))


def test_frame_cost_prices_every_operation():
    graph = conv_graph(1)
    hw = roomy(neurons_per_core=64)
    mapper = Mapper(graph, hw)
    ops = FrameOps(timesteps=3, sops={}, input_macs={"conv": 100}, spikes_pos={"n": 7}, spikes_neg={"n": 3},
                   updates_dense={"n": 192}, updates_event={"n": 40}, min_spikes={"n": 4},
                   events={ir.INPUT: 20})
    cost = mapper.frame_cost(ops)
    layer = mapper.layers["n"]
    assert layer.dest_cores == 0  # the output layer sends to the host only
    expected = 100 * hw.sop_pj + 40 * hw.neuron_update_pj + 152 * hw.idle_update_pj + 20 * hw.spike_pj
    assert cost["energy_pj"] == pytest.approx(expected)
    assert cost["timesteps"] == 3 and cost["input_messages"] == 20
    work_ns = 100 * hw.sop_ns + 40 * hw.update_ns
    assert cost["latency_us"] == pytest.approx((3 * hw.barrier_ns + work_ns) * 1e-3)


def test_dense_frame_costs_the_ann_macs():
    graph = conv_graph(2)
    ops = dense_frame_ops(graph)
    assert ops.input_macs == {"conv": 2 * 64 * 9}
    cost = Mapper(graph, roomy()).frame_cost(ops)
    assert cost["sops"] == 2 * 64 * 9 and cost["neuron_updates"] == 128


def test_mobilenetv2_maps_onto_loihi2_chips():
    from vistream_neuro import pipeline

    frames = torch.rand(2, 3, 128, 64, dtype=torch.float64)
    graph = pipeline.convert_model("mobilenetv2", frames, 4).graph
    mapper = Mapper(graph, hardware_model("loihi2"))
    summary = mapper.summary()
    assert summary["fits"], summary["violations"]
    layers = mapper.layers.values()
    assert all(np.prod(x.block) <= 8192 and x.input_axons <= 4096 for x in layers)
    assert summary["chips"] == -(-summary["cores"] // 128) and summary["depth"] > 30


def test_messages_between_chips_are_counted_apart():
    # two layers of 64 neurons, one neuron per core: 64 cores each on chips of 100 cores, so the
    # second layer straddles the chip boundary at core 100: 28 of its 64 cores sit on chip 1
    graph = ir.SpikingGraph((1, 8, 8), [*conv_graph(1).nodes, ir.Conv("c2", "n", np.ones((1, 1, 1, 1))),
                                        ir.Neuron("m", "c2", np.array(1.0), 7)], "m")
    hw = roomy(neurons_per_core=1, cores_per_chip=100, mesh=(10, 10))
    mapper = Mapper(graph, hw)
    assert mapper.cores == 128 and mapper.chips == 2
    layer = mapper.layers["n"]
    assert layer.off_chip == pytest.approx(28 / 64)  # every core of n is on chip 0
    ops = FrameOps(timesteps=2, sops={"c2": 10}, input_macs={"conv": 30}, spikes_pos={"n": 10, "m": 0},
                   spikes_neg={"n": 0, "m": 0}, updates_dense={"n": 128, "m": 128},
                   updates_event={"n": 10, "m": 10}, min_spikes={}, events={ir.INPUT: 5})
    cost = mapper.frame_cost(ops)
    assert cost["messages"] == pytest.approx(10)
    assert cost["messages_off_chip"] == pytest.approx(10 * 28 / 64)


def test_feasibility_names_the_limiting_resource_of_every_layer():
    # 256 neurons of fan-in 9 on cores of 64 neurons: 4 cores, each full of neurons and far below
    # its axon and memory limits, so neurons per core is what limits
    mapper = Mapper(conv_graph(), roomy(neurons_per_core=64))
    (row,) = mapper.summary()["feasibility"]
    assert row["fits"] and row["limiting"] == "neurons_per_core" and row["fan_in"] == 9
    assert row["utilisation"]["neurons_per_core"] == 1.0 and row["limits"]["neurons_per_core"] == 64
    # a whole 8x8 map needs 64 input axons; with 63 the axons bind
    assert Mapper(conv_graph(), roomy(max_input_axons=63)).layers["n"].limiting == "max_input_axons"
    assert mapper.layers["n"].row()["limiting"] == "neurons_per_core"


def test_a_512_channel_3x3_convolution_does_not_fit_loihi1_and_is_not_split():
    # SpikingJelly issue #543: 512 x 3 x 3 = 4608 inputs per neuron against 4,096 input axons per core;
    # on a binary-spike chip a ternary source needs two axons per input (9216)
    wide = np.ones((2, 512, 3, 3))
    graph = ir.SpikingGraph((512, 4, 4), [ir.Conv("conv", ir.INPUT, wide, None, (1, 1), (1, 1)),
                                          ir.Neuron("n", "conv", np.array(1.0), 7),
                                          ir.Conv("conv2", "n", np.ones((512, 2, 1, 1))),
                                          ir.Neuron("m", "conv2", np.array(1.0), 7),
                                          ir.Conv("conv3", "m", wide, None, (1, 1), (1, 1)),
                                          ir.Neuron("o", "conv3", np.array(1.0), 7)], "o")
    summary = Mapper(graph, hardware_model("loihi1")).summary()
    rows = {row["layer"]: row for row in summary["feasibility"]}
    assert not summary["fits"] and set(summary["violations"]) == {"n", "o"}
    assert rows["n"]["limiting"] == "max_input_axons" and rows["n"]["fan_in"] == 4608
    assert rows["n"]["violations"] == ["max_input_axons: one neuron needs 4608 > 4096"]
    assert rows["o"]["violations"][0] == "max_input_axons: one neuron needs 9216 > 4096"
    assert rows["m"]["fits"]


def test_explicit_synapses_and_placement_agree_with_the_counts():
    graph = ir.SpikingGraph((2, 6, 6), [
        ir.Conv("conv", ir.INPUT, np.ones((4, 1, 3, 3)), None, (2, 2), (1, 1), groups=2),
        ir.Neuron("n", "conv", np.array(1.0), 7), ir.Flatten("flat", "n"),
        ir.Linear("fc", "flat", np.ones((5, 36))), ir.Neuron("m", "fc", np.array(1.0), 7)], "m")
    mapper = Mapper(graph, roomy(neurons_per_core=8))
    (term,) = mapper.terms["n"]
    src, dst = mapper.synapse_pairs(term, "n")
    assert len(src) == mapper.layers["n"].synapses
    # every synapse joins an input channel of the output channel's group
    assert np.all(src // 36 == (dst // 9) // 2)
    (fc,) = mapper.terms["m"]
    assert len(mapper.synapse_pairs(fc, "m")[0]) == 5 * 36
    core, offset = mapper.placement("n")
    layer = mapper.layers["n"]
    assert set(core) == set(range(layer.first_core, layer.first_core + layer.cores))
    assert max(np.bincount(core - layer.first_core)) <= 8
    assert len(set(zip(core, offset, strict=True))) == len(core)  # one slot per neuron
