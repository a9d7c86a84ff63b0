"""The ST-BIF Lava process (floating_pt and fixed_pt models) against the reference neuron."""

import numpy as np
import pytest
import torch

from neurons.stbif import initial_state, stbif_step
from tests.conftest import requires_lava

pytestmark = requires_lava

STEPS = 40


def _reference(currents: np.ndarray, scale, pos_max: int, neg_min: int):
    """Spikes (neurons x steps) and final counts of the pure reference, in float64."""
    x = torch.from_numpy(currents.T.astype(np.float64))
    scale = torch.as_tensor(scale, dtype=torch.float64)
    q, acc = initial_state(x[0])
    spikes = []
    for current in x:
        spike, q, acc = stbif_step(current, q, acc, scale, torch.tensor(float(pos_max)),
                                   torch.tensor(float(neg_min)))
        spikes.append(spike)
    return torch.stack(spikes).numpy().T, acc.numpy()


def _run(currents: np.ndarray, tag: str, **params):
    from neurons.lava_compat import import_lava, run_checked

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from neurons.lava_stbif import STBIF, raise_on_fault

    n, steps = currents.shape
    source = Source(data=currents)
    neuron = STBIF(shape=(n,), **params)
    sink = Sink(shape=(n,), buffer=steps)
    source.s_out.connect(neuron.a_in)
    neuron.s_out.connect(sink.a_in)
    try:
        run_checked(neuron, RunSteps(steps), Loihi2SimCfg(select_tag=tag))
        raise_on_fault(neuron)
        return sink.data.get(), neuron.acc.get(), neuron.q.get()
    finally:
        neuron.stop()


def _currents(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    currents = rng.normal(0.0, 1.5, size=(n, STEPS))
    currents[:, ::7] *= 6.0  # large kicks drive neurons into both bounds
    return currents


@pytest.mark.parametrize("pos_max,neg_min", [(7, -8), (15, 0)])
def test_floating_pt_matches_reference(pos_max, neg_min):
    currents = _currents(60, seed=pos_max)
    scale = np.linspace(0.2, 1.3, 60)
    out, acc, _ = _run(currents, "floating_pt", scale=scale, pos_max=pos_max, neg_min=neg_min,
                       name="f")
    spikes, ref_acc = _reference(currents, scale, pos_max, neg_min)
    np.testing.assert_array_equal(out, spikes * scale[:, None])
    np.testing.assert_array_equal(acc, ref_acc)
    assert (acc == pos_max).any() and (neg_min == 0 or (acc == neg_min).any())


def test_fixed_pt_matches_reference_with_integer_state():
    """Power-of-two thresholds keep the float reference exact, so the two must agree bit for bit."""
    theta = np.repeat([32, 64, 128], 20)
    currents = np.round(_currents(60, seed=3) * theta[:, None]).astype(np.int64)
    payload = np.full(60, 5)
    out, acc, q = _run(currents, "fixed_pt", scale=theta, payload=payload, pos_max=7, neg_min=-8,
                       name="x")
    spikes, ref_acc = _reference(currents, theta, 7, -8)
    np.testing.assert_array_equal(out, spikes * payload[:, None])
    np.testing.assert_array_equal(acc, ref_acc)
    assert np.array_equal(q, np.round(q)) and np.all((q >= -(2**23)) & (q < 2**23))
    assert (acc == 7).any() and (acc == -8).any()


@pytest.mark.parametrize("tag,scale,bias", [("floating_pt", 0.25, 1.1), ("fixed_pt", 64, 282)])
def test_bias_enters_once(tag, scale, bias):
    """Constant charge: after it settles the count is Q(bias), however many steps follow."""
    out, acc, _ = _run(np.zeros((1, 12)), tag, scale=scale, bias=bias, pos_max=15, neg_min=0,
                       name="b")
    assert acc[0] == 4  # floor(1.1 / 0.25 + 0.5) = floor(282 / 64 + 0.5) = 4
    assert np.count_nonzero(out) == 4


def test_fixed_pt_overflow_is_an_error_naming_the_layer():
    from neurons.lava_stbif import StateOverflowError

    with pytest.raises(StateOverflowError, match="layer3: residual left the signed 24-bit range"):
        _run(np.full((3, 4), 2**22), "fixed_pt", scale=64, pos_max=7, neg_min=-8,
             name="layer3")


def test_fixed_pt_rejects_odd_thresholds():
    with pytest.raises(ValueError, match="even"):
        _run(np.zeros((1, 2), dtype=int), "fixed_pt", scale=63, pos_max=7, name="odd")
