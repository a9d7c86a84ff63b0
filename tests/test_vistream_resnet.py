"""``--model vistream-resnet50 --weights checkpoint-90.pth``: a checkpoint fabricated in ViStream's
key layout (random values) loads, converts with its learned scales, and the SNN equals the QANN.

The layout, from ViStream's code: its ResNet subclasses torchvision's ResNet-50 (Bottleneck,
[3, 4, 6, 3]; its bottlenecks' ``relu1`` / ``relu2`` / ``relu3`` hold no parameters), so the state
has torchvision's keys and shapes; ``myquan_replace_resnet`` turns every ReLU (``relu`` of the stem
and the three of each bottleneck, ``layer4`` included) into ``MyQuan``, whose one parameter is its
scalar step ``s``; the training script saves ``{"model": state, "optimizer", "epoch", "args"}``.
"""

import argparse
import json

import pytest
import torch
import torchvision

import vistream_neuro as vn
from evals.run import main
from vistream_neuro.models import CheckpointError
from vistream_neuro.pipeline import convert_model, normalise
from vistream_neuro.quant import NeuronBounds, Quantizer

LAYERS = {"layer1": 3, "layer2": 4, "layer3": 6, "layer4": 3}


def vistream_state(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in torchvision.models.resnet50(weights=None).state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(90, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=gen)
        elif key.endswith(("running_mean", ".bias")):
            state[key] = 0.1 * torch.randn(value.shape, generator=gen)
        elif value.ndim == 4:  # conv weights, He-scaled so activations stay of order 1
            state[key] = torch.randn(value.shape, generator=gen) * (2 / value[0].numel()) ** 0.5
        else:
            state[key] = 0.5 + 0.5 * torch.rand(value.shape, generator=gen)
    relus = ["relu"] + [f"{layer}.{i}.relu{k}" for layer, n in LAYERS.items() for i in range(n)
                        for k in (1, 2, 3)]
    for name in relus:
        state[f"{name}.s"] = (0.05 + 0.3 * torch.rand((), generator=gen)).float()
    return state


def save(path, state, **extra):
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}, "epoch": 89,
                "args": argparse.Namespace(level=16, weight_quantization_bit=32), **extra}, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    state = vistream_state()
    return save(tmp_path_factory.mktemp("vistream") / "checkpoint-90.pth", state), state


def _frames(count: int = 3) -> torch.Tensor:
    frames = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4)).repeat(count, 1, 1, 1)
    frames[1:, :, 8:20, 8:20] = 0.6
    frames[2:, :, 12:24, 4:16] = 0.2
    return frames


def test_checkpoint_loads_with_its_scales_and_the_snn_equals_the_qann(checkpoint):
    path, state = checkpoint
    frames = _frames()
    net = convert_model("vistream-resnet50", normalise(frames, "vistream-resnet50"),
                        NeuronBounds.from_level(16), weights=path)
    quantizers = {n: q for n, q in net.qann.named_modules() if isinstance(q, Quantizer)}
    assert len(quantizers) == 1 + 3 * (3 + 4 + 6)  # layer4 is cut
    for name, q in quantizers.items():
        assert float(q.scale) == float(state[f"{name}.s"]) and (q.neg_min, q.pos_max) == (0, 7)
    assert torch.equal(net.ann.layer3[5].conv3.weight.float(), state["layer3.5.conv3.weight"])
    assert net.graph.shapes[net.graph.output] == (1024, 4, 4)  # layer3 at stride 1: 1/8 of 32x32
    for precision in ("float64", "fixed"):
        result = vn.run(net, frames, backend="spikingjelly", precision=precision)
        assert result.level_mismatch == 0.0
        assert all(f["spikes"] > 0 for f in result.frames)


def test_a_checkpoint_that_does_not_fit_names_the_key(checkpoint, tmp_path):
    _, state = checkpoint
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "layer2.0.bn1.running_var"},
                    "lacks key 'layer2.0.bn1.running_var'"),
        "shape": ({**state, "layer1.1.conv2.weight": torch.zeros(64, 64, 1, 1)},
                  r"'layer1.1.conv2.weight' has shape \(64, 64, 1, 1\)"),
        "scale": ({k: v for k, v in state.items() if k != "layer1.0.relu2.s"},
                  "lacks key 'layer1.0.relu2.s'"),
        "extra": ({**state, "layer3.2.relu4.s": torch.tensor(0.1)}, "unexpected key 'layer3.2.relu4.s'"),
        "quantised": ({**state, "conv1.quan_w_fn.s": torch.tensor(0.1)}, "weight_quantization_bit"),
        "float": ({k: v for k, v in state.items() if not k.endswith(".s")}, "no MyQuan scale"),
        "bad scale": ({**state, "relu.s": torch.tensor(-1.0)}, "relu.s is -1.0"),
    }
    frames = normalise(_frames(1), "vistream-resnet50")
    for name, (broken, message) in cases.items():
        path = save(tmp_path / f"{name}.pth", broken)
        with pytest.raises(CheckpointError, match=message):
            convert_model("vistream-resnet50", frames, NeuronBounds.from_level(16), weights=path)


def test_cli_runs_the_checkpoint_at_level_16(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    out = tmp_path / "run"
    model = ["--model", "vistream-resnet50", "--weights", str(path)]
    assert main(["--backend", "torch", "--task", "stream", *model,
                 "--frames", "2", "--input-size", "32x32", "--precision", "float64", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["level"] == 16 and report["neuron_bounds"]["unsigned"] == [0, 7]
    assert report["calibration"] == "checkpoint" and report["summary"]["level_mismatch_max"] == 0.0
    capsys.readouterr()
    assert main(["--backend", "torch", "--task", "stream", *model,
                 "--calibration", "mse", "--out", str(tmp_path / "bad")]) == 2
    assert "learned scales" in capsys.readouterr().err
