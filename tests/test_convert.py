"""ANN -> QANN -> spiking graph: BN folding, shapes, clear errors."""

import numpy as np
import pytest
import torch
from torch import nn

from vistream_neuro import ir
from vistream_neuro.backend import UnknownBackendError, lower
from vistream_neuro.converter import ConversionError, to_spiking_graph
from vistream_neuro.quant import Quantizer, bounds, calibrate, quantize_activations


def test_bounds_follow_bits_and_sign():
    assert bounds(4, signed=False) == (15, 0)
    assert bounds(4, signed=True) == (7, -8)
    assert bounds(3, signed=False) == (7, 0)  # ViStream's level=16 for ReLU layers


@pytest.mark.parametrize("method", ["percentile", "mse"])
def test_folded_graph_reproduces_the_qann(method):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1), nn.BatchNorm2d(6), nn.ReLU6(),
                        nn.Conv2d(6, 6, 3, 1, 1, groups=3), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4), nn.ReLU())
    net[1].running_mean.uniform_(-0.2, 0.2)
    net[1].running_var.uniform_(0.5, 2.0)
    qann = quantize_activations(net, 4).double().eval()
    x = torch.rand(5, 3, 16, 16, dtype=torch.float64)
    calibrate(qann, x, method=method)
    graph = to_spiking_graph(qann, (3, 16, 16))
    assert [type(n).__name__ for n in graph.nodes] == [
        "Conv", "Neuron", "Conv", "Neuron", "AvgPool", "Flatten", "Linear", "Neuron"]
    assert graph.shapes[graph.output] == (4,)
    sim = lower(graph, "torch")
    sim.step(x)
    with torch.no_grad():
        torch.testing.assert_close(sim.output(), qann(x), rtol=0, atol=1e-12)


def test_unsupported_module_is_named_with_its_path():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.Sigmoid()))
    with pytest.raises(ConversionError, match=r"1\.0 \(Sigmoid\)"):
        to_spiking_graph(net, (3, 8, 8))
    with pytest.raises(ConversionError, match="quantize activations"):
        to_spiking_graph(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (3, 8, 8))


def test_graph_shape_checks():
    w = np.zeros((4, 3, 3, 3))
    with pytest.raises(ir.GraphError, match="does not fit"):
        ir.SpikingGraph((2, 8, 8), [ir.Conv("c", "input", w)], "c")
    with pytest.raises(ir.GraphError, match="not defined"):
        ir.SpikingGraph((3, 8, 8), [ir.Neuron("n", "c", np.array(1.0), 7)], "n")
    with pytest.raises(ir.GraphError, match="> 0"):
        ir.SpikingGraph((3, 8, 8), [ir.Neuron("n", "input", np.array(-1.0), 7)], "n")


def test_unknown_backend_names_the_valid_ones():
    graph = ir.SpikingGraph((3, 8, 8), [ir.Neuron("n", "input", np.array(1.0), 7)], "n")
    with pytest.raises(UnknownBackendError, match="lava, spikingjelly, torch"):
        lower(graph, "nope")


def test_quantizer_matches_formula():
    q = Quantizer(7, -8)
    q.scale.fill_(0.5)
    x = torch.tensor([-10.0, -0.26, -0.25, 0.24, 0.25, 1.74, 100.0], dtype=torch.float64)
    torch.testing.assert_close(q(x), torch.tensor([-4.0, -0.5, 0.0, 0.0, 0.5, 1.5, 3.5],
                                                   dtype=torch.float64))
