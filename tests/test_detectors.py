"""lava-dl's trained detectors as float networks: equal to lava-dl's own sigma-delta blocks.

lava-dl's delta unit cannot take threshold 0: it clamps the threshold to 1/4096 and floors every
message to that grid (its state precision).  So each lava-dl block, given the same input as ours
on a frame, must give our block's output floored to 1/4096; the whole network then agrees to that
grid's accumulated error.
"""

import contextlib
import io

import pytest
import torch

from evals.data.sample_videos import sample_video
from tests.conftest import requires_lava
from vistream_neuro import models
from vistream_neuro.detectors import build_detector, checkpoint_path
from vistream_neuro.video import read_video

GRID = 1 / 4096  # lava-dl's sigma-delta state step (scale 1 << 12)


def lava_detector(name: str):
    """lava-dl's network with the shipped checkpoint, every delta threshold at its minimum."""
    from neurons.lava_compat import import_lava

    with contextlib.redirect_stdout(io.StringIO()):  # lava-dl prints a Prophesee toolbox warning
        obd = import_lava("lava.lib.dl.slayer.object_detection")
        slayer = import_lava("lava.lib.dl.slayer")
    module = obd.models.yolo_kp if name == "yolo-kp" else obd.models.tiny_yolov3_str
    net = module.Network(num_classes=80)
    state = torch.load(checkpoint_path(name), map_location="cpu", weights_only=True)
    for key, value in state.items():  # MeanOnlyBatchNorm sizes its mean lazily: give it the checkpoint's
        if key.endswith("norm.running_mean"):
            net.get_submodule(key.rsplit(".", 1)[0]).running_mean = torch.zeros_like(value)
    net.load_state_dict(state)
    for m in net.modules():
        if isinstance(m, slayer.axon.Delta):
            m.threshold.data.zero_()  # clamped by lava-dl to 1/4096 when it runs
    return net.eval()


@pytest.fixture(scope="module")
def frames():
    """Three real frames of bikes.mp4, 64x96, as lava-dl's input ``(1, 3, H, W, T)``."""
    video = read_video(sample_video("bikes"), 40, 3, None, (64, 96))
    return torch.from_numpy(video).float().permute(1, 2, 3, 0)[None]


def normalised(net, frames):
    return (frames - net.normalize_mean) / net.normalize_std


def rounded(net, frames):
    """Frames normalised and rounded to lava-dl's input grid, as its input block rounds them (ours
    takes 8-bit frames, a finer grid): what both networks are given here."""
    return net.input_blocks[0].neuron.quantize_8bit(normalised(net, frames))


@requires_lava
def test_yolo_kp_blocks_equal_lava_dl_blocks(frames):
    theirs = lava_detector("yolo-kp")
    ours = build_detector("yolo-kp")
    assert sum(p.numel() for p in ours.parameters()) > 3_000_000
    with torch.no_grad():
        x = rounded(theirs, frames)
        for t in range(frames.shape[-1]):
            z = x[..., t:t + 1]
            for i, block in enumerate(theirs.blocks):
                mine = ours.blocks[2 * i + 1](ours.blocks[2 * i](z[..., 0]))
                z = block(z)
                diff = mine - z[..., 0]
                assert diff.min() > -1e-5 and diff.max() < GRID + 1e-5, (t, i)
                assert mine.abs().max() > 0.5  # a live layer, not all zero
            head = theirs.heads[1](theirs.heads[0](z))[..., 0]
            torch.testing.assert_close(ours.head(z[..., 0]), head, atol=1e-4, rtol=1e-5)


@requires_lava
def test_yolo_kp_whole_network_equals_lava_dl_forward_on_a_stream(frames):
    theirs = lava_detector("yolo-kp")
    ours = build_detector("yolo-kp")
    with torch.no_grad():
        x = rounded(theirs, frames)
        z = theirs.input_blocks[0](normalised(theirs, frames))  # the stream as frame differences
        for block in theirs.blocks:
            z = block(z)
        for head in theirs.heads:
            z = head(z)
        for t in range(frames.shape[-1]):
            mine = ours(x[..., t])
            scale = z[..., t].abs().max()
            assert scale > 5
            # the 1/4096 floor of nine layers' messages, summed over the stream, and nothing more
            assert (mine - z[..., t]).abs().max() < 2e-3 * scale, t


@requires_lava
def test_tiny_yolov3_equals_lava_dl_blocks(frames):
    theirs = lava_detector("tiny-yolov3")
    ours = build_detector("tiny-yolov3")
    assert sum(p.numel() for p in ours.parameters()) > 8_000_000
    with torch.no_grad():
        x = rounded(theirs, frames)[..., :1]
        back = x
        for block in theirs.backend_blocks:
            back = block(back)
        h1 = back
        for block in theirs.head1_backend:
            h1 = block(h1)
        o1, h2 = h1, h1
        for block in theirs.head1_blocks:
            o1 = block(o1)
        for block in theirs.head2_backend:
            h2 = block(h2)
        o2 = torch.cat([h2, back], dim=1)
        for block in theirs.head2_blocks:
            o2 = block(o2)
        mine1, mine2 = ours(x[..., 0])
    for mine, ref in ((mine1, o1[..., 0]), (mine2, o2[..., 0])):
        assert mine.shape == ref.shape == (1, 255, *ref.shape[2:])
        assert (mine - ref).abs().max() < 2e-3 * ref.abs().max()


def test_detectors_are_registered_models():
    assert {"yolo-kp", "tiny-yolov3"} <= set(models.MODELS)
    net = models.build("yolo-kp")
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 255, 2, 2)
    assert models.normalisation("yolo-kp") is models.NORMALISATION["mobilenetv2"]
    assert len(net.sigma_delta_thresholds) == 9 and set(net.sigma_delta_thresholds) == {0.09375}
