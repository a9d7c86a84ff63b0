"""QANN construction: signed quantizers where analog values would feed a synapse; calibration."""

import numpy as np
import torch
from torch import nn

from vistream_neuro import ir, models
from vistream_neuro.converter import to_spiking_graph
from vistream_neuro.quant import Quantizer, calibrate, make_qann


def _synaptic_inputs_are_spikes(graph: ir.SpikingGraph) -> bool:
    """Every conv/linear reads the input frame, a neuron, or linear ops of neurons only."""
    kinds = {n.name: n for n in graph.nodes}

    def spiking(name):
        if name == ir.INPUT:
            return False
        node = kinds[name]
        if isinstance(node, ir.Neuron):
            return True
        if isinstance(node, ir.SYNAPTIC):
            return False
        return all(spiking(i) for i in node.inputs)

    return all(n.input == ir.INPUT or spiking(n.input) for n in graph.nodes if isinstance(n, ir.SYNAPTIC))


def test_mobilenetv2_gets_signed_quantizers_on_its_bottlenecks():
    qann = make_qann(models.build("mobilenetv2"), bits=4)
    quantizers = [m for m in qann.modules() if isinstance(m, Quantizer)]
    signed = [q for q in quantizers if q.neg_min < 0]
    # 35 ReLU6 become unsigned; the outputs of all 17 inverted-residual blocks (linear bottleneck,
    # after the residual add where there is one) feed a conv and become signed.
    assert len(quantizers) - len(signed) == 35
    assert len(signed) == 17 and all((q.pos_max, q.neg_min) == (7, -8) for q in signed)
    graph = to_spiking_graph(qann, (3, 64, 32))
    assert _synaptic_inputs_are_spikes(graph)


def test_shared_relu_modules_are_split_so_each_place_has_its_own_scale():
    qann = make_qann(models.build("resnet18"), bits=4)
    names = [n for n, m in qann.named_modules() if isinstance(m, Quantizer)]
    assert len(names) == len(set(names)) == 1 + 2 * 6  # stem + two per BasicBlock in layer1..3
    graph = to_spiking_graph(qann, (3, 32, 32))
    assert len(graph.neurons) == 13 and _synaptic_inputs_are_spikes(graph)


def test_without_signed_quantizers_the_graph_would_feed_analog_values():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1))
    assert not _synaptic_inputs_are_spikes(to_spiking_graph(net, (3, 4, 4)))
    assert _synaptic_inputs_are_spikes(to_spiking_graph(make_qann(net, 4), (3, 4, 4)))


def test_percentile_calibration_maps_the_percentile_to_the_bound():
    torch.manual_seed(0)
    qann = make_qann(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), bits=4).double()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    calibrate(qann, x, method="percentile", percentile=99.0)
    (q,) = [m for m in qann.modules() if isinstance(m, Quantizer)]
    with torch.no_grad():
        pre = torch.relu(qann.get_submodule("0")(x)).flatten().numpy()
    assert abs(float(q.scale) * 15 - np.percentile(pre, 99.0)) < 1e-9


def test_mse_calibration_beats_a_much_too_large_scale():
    torch.manual_seed(0)
    qann = make_qann(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), bits=3).double()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        target = torch.relu(qann.get_submodule("0")(x))
    calibrate(qann, x, method="mse")
    with torch.no_grad():
        err_mse = (qann(x) - target).pow(2).mean()
        (q,) = [m for m in qann.modules() if isinstance(m, Quantizer)]
        q.scale.mul_(3)
        err_big = (qann(x) - target).pow(2).mean()
    assert err_mse < err_big
