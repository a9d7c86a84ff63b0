"""Settling equals stepping on exact rounding boundaries (docs/stbif.md).

Frames are multiples of ``s/8`` (and their neighbours one ulp away), so residuals land exactly on
0, on 1 and a hair beside them; scales 0.1, 1.7 and float32(0.1) are not powers of two.  Every
neuron streams its frames in LoCC (the settled state carried to the next frame), and the settle
path must end each frame where stepping with the current and then zeros ends: the same net spikes,
``q`` and ``acc``, element for element, in the reference, the SpikingJelly neuron and the Lava
``floating_pt`` process.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurons.sj_stbif import STBIFNeuron
from neurons.stbif import initial_state, stbif_settle, stbif_step
from tests.conftest import requires_lava

SCALES = (0.1, 1.7, float(np.float32(0.1)))
BOUNDS = ((0, 7), (-8, 7))
DTYPES = (torch.float32, torch.float64)
BANDS = (0.0, 0.25, 0.1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Many elementwise ops on mid-sized tensors: one thread is fastest, loaded machine or not."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _step_until_quiet(current, q, acc, scale, pos_max, neg_min, band):
    """Stepping: ``current`` at the first step, zeros after, until no neuron spikes."""
    spike, q, acc = stbif_step(current, q, acc, scale, pos_max, neg_min, band)
    total, zeros = spike, torch.zeros_like(current)
    for _ in range(int(pos_max - neg_min) + 2):
        if not spike.any():
            return total, q, acc
        spike, q, acc = stbif_step(zeros, q, acc, scale, pos_max, neg_min, band)
        total = total + spike
    raise AssertionError("stepping did not settle")


def _grid(lo: int, hi: int, dtype, ulps: bool = True, margin: int = 2):
    """Frame values ``m * s / 8`` for ``m`` from ``margin`` levels below ``lo`` to as many above ``hi``,
    for every scale, each with its neighbours one ulp away: (scale per value, value)."""
    m = torch.arange(8 * (lo - margin), 8 * (hi + margin) + 1, dtype=dtype)
    scale = torch.tensor(SCALES, dtype=dtype)[:, None].expand(-1, len(m))
    x = m * scale / 8
    if ulps:
        x = torch.stack([torch.nextafter(x, torch.tensor(-np.inf, dtype=dtype)), x,
                         torch.nextafter(x, torch.tensor(np.inf, dtype=dtype))], -1)
        scale = scale[..., None].expand_as(x)
    return scale.reshape(len(SCALES), -1), x.reshape(len(SCALES), -1)


def _pairs(lo: int, hi: int, dtype, ulps: bool = True, margin: int = 2):
    """Every two-frame stream over the grid of one scale, all scales side by side: (scale, frames)
    with frames ``(2, N)``."""
    scale, x = _grid(lo, hi, dtype, ulps, margin)
    n = x.shape[1]
    first = x[:, :, None].expand(-1, -1, n).reshape(-1)
    second = x[:, None, :].expand(-1, n, -1).reshape(-1)
    return scale[:, :, None].expand(-1, -1, n).reshape(-1), torch.stack([first, second])


def _currents(frames: torch.Tensor) -> torch.Tensor:
    """LoCC input: each frame minus the one before, in the frames' dtype (as the streaming driver)."""
    return torch.cat([frames[:1], frames[1:] - frames[:-1]])


def _bounds(lo: int, hi: int, dtype):
    return torch.tensor(float(hi), dtype=dtype), torch.tensor(float(lo), dtype=dtype)


def _assert_settle_equals_stepping(scale, frames, lo, hi, band):
    """Per frame: the reference's settle against stepping, both with hysteresis ``band``."""
    pos_max, neg_min = _bounds(lo, hi, frames.dtype)
    q, acc = initial_state(frames[0])
    q_step, acc_step = q, acc
    for t, current in enumerate(_currents(frames)):
        change, q, acc = stbif_settle(current, q, acc, scale, pos_max, neg_min, band)
        total, q_step, acc_step = _step_until_quiet(current, q_step, acc_step, scale, pos_max, neg_min, band)
        for what, settled, stepped in (("spikes", change, total), ("q", q, q_step), ("acc", acc, acc_step)):
            bad = (settled != stepped).nonzero().flatten()
            assert not len(bad), (f"frame {t}: {what} differs at {len(bad)} neurons, e.g. scale "
                                  f"{scale[bad[0]].item()!r}, frames {frames[:, bad[0]].tolist()}: "
                                  f"settle {settled[bad[0]].item()}, stepping {stepped[bad[0]].item()}")


@pytest.mark.parametrize("band", BANDS)
@pytest.mark.parametrize("lo,hi", BOUNDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_reference_settle_equals_stepping_on_every_pair_of_boundary_frames(dtype, lo, hi, band):
    scale, frames = _pairs(lo, hi, dtype)
    _assert_settle_equals_stepping(scale, frames, lo, hi, band)


@pytest.mark.parametrize("band", BANDS)
@pytest.mark.parametrize("lo,hi", BOUNDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_reference_settle_equals_stepping_on_every_three_frames_near_half_levels(dtype, lo, hi, band):
    """Three-frame streams whose frames sit on a half level (the residual lands on an integer) or an
    eighth beside it: the state the first two leave is carried into the third."""
    m = torch.arange(lo - 1, hi + 2, dtype=dtype)[:, None] * 8 + torch.tensor([3.0, 4.0, 5.0], dtype=dtype)
    x = m.flatten()[None] * torch.tensor(SCALES, dtype=dtype)[:, None] / 8
    n = x.shape[1]
    frames = torch.stack([x[:, :, None, None].expand(-1, n, n, n), x[:, None, :, None].expand(-1, n, n, n),
                          x[:, None, None, :].expand(-1, n, n, n)]).reshape(3, -1)
    scale = torch.tensor(SCALES, dtype=dtype)[:, None].expand(-1, n ** 3).reshape(-1)
    _assert_settle_equals_stepping(scale, frames, lo, hi, band)


def test_the_reported_cases_end_on_the_quantised_level():
    """The issue's cases: a residual a hair below 0 after the second frame."""
    f32 = torch.float32
    for dtype, scale, eighths in ((f32, torch.tensor(0.1, dtype=f32), (13, 12)),
                                  (torch.float64, torch.tensor(0.1, dtype=torch.float64), (7, 4))):
        frames = torch.tensor(eighths, dtype=dtype)[:, None] * scale / 8
        pos_max, neg_min = _bounds(0, 7, dtype)
        q, acc = initial_state(frames[0])
        for current in _currents(frames):
            _, q, acc = stbif_settle(current, q, acc, scale, pos_max, neg_min)
        assert acc.item() == np.floor(eighths[-1] / 8 + 0.5) and q.item() == 0.0


@pytest.mark.parametrize("band", BANDS[1:])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_reference_settle_equals_stepping_beside_the_hysteresis_thresholds(dtype, band):
    """Residuals within 40 ulps of ``n + h`` and ``n - h``, where ``floor(q - h)`` would round."""
    lo, hi = -8, 7
    q = torch.arange(lo - 2, hi + 3, dtype=dtype)[:, None] + torch.tensor([band, -band], dtype=dtype)
    near = [q := q.flatten()]
    for direction in (np.inf, -np.inf):
        q_ulp = q
        for _ in range(40):
            near.append(q_ulp := torch.nextafter(q_ulp, torch.tensor(direction, dtype=dtype)))
    q = torch.cat(near)[:, None].expand(-1, hi - lo + 1).flatten()  # each from every count
    acc = torch.arange(lo, hi + 1, dtype=dtype).repeat(len(q) // (hi - lo + 1))
    pos_max, neg_min = _bounds(lo, hi, dtype)
    zeros, one = torch.zeros_like(q), torch.tensor(1.0, dtype=dtype)
    settled = stbif_settle(zeros, q, acc, one, pos_max, neg_min, band)
    stepped = _step_until_quiet(zeros, q, acc, one, pos_max, neg_min, band)
    for what, x, y in zip(("spikes", "q", "acc"), settled, stepped, strict=True):
        assert torch.equal(x, y), f"{what} differs at q = {q[x != y][:4].tolist()}"


HALF_LEVELS = st.builds(lambda level, off: 8 * level + 4 + off, st.integers(-10, 9), st.integers(-1, 1))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(dtype=st.sampled_from(DTYPES), bounds=st.sampled_from(BOUNDS), band=st.sampled_from(BANDS),
       stream=st.lists(st.tuples(st.one_of(HALF_LEVELS, st.integers(-80, 80)), st.integers(-2, 2)),
                       min_size=3, max_size=10))
def test_reference_settle_equals_stepping_over_longer_streams(dtype, bounds, band, stream):
    """Streams of 3 to 10 frames on the ``s/8`` grid, mostly on half levels (where the residual
    lands on an integer), each up to two ulps off it; every scale at once."""
    scale = torch.tensor(SCALES, dtype=dtype)
    frames = torch.stack([m * scale / 8 for m, _ in stream])
    for t, (_, ulps) in enumerate(stream):
        for _ in range(abs(ulps)):
            frames[t] = torch.nextafter(frames[t], torch.tensor(np.sign(ulps) * np.inf, dtype=dtype))
    _assert_settle_equals_stepping(scale, frames, *bounds, band)


@pytest.mark.parametrize("band", BANDS)
@pytest.mark.parametrize("lo,hi", BOUNDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_spikingjelly_neuron_settles_where_it_steps(dtype, lo, hi, band):
    """The module's settle (first frame since a reset without the band) against stepping: its own
    steps without hysteresis (it steps without), the reference's steps with it."""
    scale, frames = _pairs(lo, hi, dtype, ulps=False)
    settling = STBIFNeuron(scale.double(), pos_max=hi, neg_min=lo, hysteresis=band)
    stepping = STBIFNeuron(scale.double(), pos_max=hi, neg_min=lo)
    pos_max, neg_min = _bounds(lo, hi, dtype)
    q, acc = initial_state(frames[0])
    for t, current in enumerate(_currents(frames)):
        change = settling.settle(current) / settling.payload.to(dtype)
        if band:
            total, q, acc = _step_until_quiet(current, q, acc, scale, pos_max, neg_min, band if t else 0.0)
        else:
            total = stepping(current) / stepping.payload.to(dtype)
            while stepping.spike.any():
                total = total + stepping(torch.zeros_like(current)) / stepping.payload.to(dtype)
            q, acc = stepping.q, stepping.acc
        assert torch.equal(settling.acc, acc) and torch.equal(settling.q, q), t
        assert torch.equal(torch.round(change), total) and torch.equal(settling.spike, total), t


@requires_lava
def test_lava_floating_pt_settles_where_it_steps():
    """One Lava ST-BIF process settling and one stepping, fed the same two-frame streams (each frame's
    current, then zeros while stepping fires), against the reference's stepping: the settling one
    ends each frame in its first step, the stepping one by the frame's last."""
    from neurons.lava_compat import import_lava, run_checked

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer as Source

    from neurons.lava_stbif import STBIF

    lo, hi = 0, 7
    scale, frames = _pairs(lo, hi, torch.float64, ulps=False, margin=1)
    span = hi - lo + 3  # steps per frame: enough for stepping to settle
    currents = np.zeros((len(scale), 2 * span))
    currents[:, ::span] = _currents(frames).numpy().T
    source = Source(data=currents)
    neurons = {mode: STBIF(shape=(len(scale),), scale=scale.numpy(), pos_max=hi, neg_min=lo,
                           settle=mode == "settle", name=mode) for mode in ("settle", "step")}
    for neuron in neurons.values():
        source.s_out.connect(neuron.a_in)
    pos_max, neg_min = _bounds(lo, hi, torch.float64)
    q, acc = initial_state(frames[0])
    config = Loihi2SimCfg(select_tag="floating_pt")
    try:
        for t, current in enumerate(_currents(frames)):
            _, q, acc = _step_until_quiet(current, q, acc, scale, pos_max, neg_min, 0.0)
            for mode, steps in (("settle", 1), ("step", span - 1)):
                run_checked(source, RunSteps(steps), config)
                np.testing.assert_array_equal(neurons[mode].q.get(), q.numpy(), err_msg=f"{mode} {t}")
                np.testing.assert_array_equal(neurons[mode].acc.get(), acc.numpy(), err_msg=f"{mode} {t}")
        np.testing.assert_array_equal(neurons["settle"].q.get(), q.numpy())  # quiet since it settled
    finally:
        source.stop()
