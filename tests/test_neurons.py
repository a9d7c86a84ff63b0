"""ST-BIF: reference function, our SpikingJelly module and SpikingJelly's own STBIFNode agree."""

import pytest
import torch
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.neuron import STBIFNode

from neurons.sj_stbif import STBIFNeuron
from neurons.stbif import initial_state, quantize, stbif_step


def _reference_run(currents, scale, pos_max, neg_min):
    q, acc = initial_state(currents[0])
    spikes = []
    for current in currents:
        spike, q, acc = stbif_step(current, q, acc, scale, pos_max, neg_min)
        spikes.append(spike)
    return torch.stack(spikes), q, acc


@pytest.mark.parametrize("pos_max,neg_min", [(7, 0), (15, 0), (7, -8), (3, -4)])
def test_reference_matches_spikingjelly_stbifnode(pos_max, neg_min):
    """Random currents of both signs, large enough to hit both bounds."""
    g = torch.Generator().manual_seed(pos_max - neg_min)
    currents = 1.5 * torch.randn(40, 500, generator=g, dtype=torch.float32)
    currents[::7] *= 6.0
    scale = torch.tensor(0.37)
    spikes, q, acc = _reference_run(currents, scale, torch.tensor(float(pos_max)),
                                    torch.tensor(float(neg_min)))
    sj = STBIFNode(scale, level=pos_max - neg_min + 1, pos_max=pos_max, neg_min=neg_min)
    sj_out = torch.stack([sj(c) for c in currents])
    torch.testing.assert_close(sj_out, spikes * scale, rtol=0, atol=0)
    torch.testing.assert_close(sj.acc_q, acc, rtol=0, atol=0)
    assert (acc == pos_max).any() and (neg_min == 0 or (acc == neg_min).any())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_module_matches_reference_single_and_multi_step(dtype):
    g = torch.Generator().manual_seed(1)
    currents = 2.0 * torch.randn(30, 4, 3, 5, 5, generator=g, dtype=dtype)
    scale = torch.tensor([0.2, 0.5, 1.3], dtype=torch.float64).reshape(3, 1, 1)
    spikes, _, acc = _reference_run(currents, scale.to(dtype), torch.tensor(7.0, dtype=dtype),
                                    torch.tensor(-8.0, dtype=dtype))
    single = STBIFNeuron(scale, pos_max=7, neg_min=-8)
    out_single = torch.stack([single(c) for c in currents])
    multi = STBIFNeuron(scale, pos_max=7, neg_min=-8, step_mode="m")
    out_multi = torch.cat([multi(part) for part in currents.split([11, 19])])  # state carries over
    assert out_single.dtype == out_multi.dtype == dtype
    torch.testing.assert_close(out_single, spikes * scale.to(dtype), rtol=0, atol=0)
    torch.testing.assert_close(out_multi, out_single, rtol=0, atol=0)
    torch.testing.assert_close(single.acc, acc, rtol=0, atol=0)
    fused = STBIFNeuron(scale, pos_max=7, neg_min=-8)  # SpikingJelly's operator, as on CUDA
    out_fused = torch.cat([fused.fused_multi_step(part) for part in currents.split([11, 19])])
    torch.testing.assert_close(out_fused, out_single, rtol=0, atol=0)
    for state in ("q", "acc", "spike"):
        torch.testing.assert_close(getattr(multi, state), getattr(single, state), rtol=0, atol=0)
        torch.testing.assert_close(getattr(fused, state), getattr(single, state), rtol=0, atol=0)


def test_accumulated_output_converges_to_quantizer_and_state_survives_until_reset():
    g = torch.Generator().manual_seed(2)
    neuron = STBIFNeuron(0.25, pos_max=15, neg_min=-16)
    total = torch.zeros(1000, dtype=torch.float64)
    for _ in range(3):  # three "frames" of input, no reset in between (LoCC)
        current = torch.randn(1000, generator=g, dtype=torch.float64)
        total += current
        neuron(current)
        for _ in range(40):
            neuron(torch.zeros_like(current))
        assert bool(neuron.quiet)
        expected = quantize(total, torch.tensor(0.25), torch.tensor(15.0), torch.tensor(-16.0))
        torch.testing.assert_close(neuron.accumulated, expected, rtol=0, atol=1e-12)
    functional.reset_net(neuron)
    assert neuron.acc is None and neuron.q is None


def test_module_rejects_ambiguous_parameters():
    with pytest.raises(ValueError, match="pos_max"):
        STBIFNeuron(0.1, pos_max=0)
    with pytest.raises(ValueError, match="neg_min"):
        STBIFNeuron(0.1, pos_max=7, neg_min=1)
    with pytest.raises(ValueError, match="scale"):
        STBIFNeuron(-0.1, pos_max=7)
