"""The public Python API: any traceable network through ``vn.convert`` / ``vn.run``, the CLI's
``--model package.module:factory``, one options object checked in one place, and the README's
example, run as it is written."""

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vistream_neuro as vn
from evals.data.synthetic import synthetic_video
from evals.run import main

ROOT = Path(__file__).resolve().parents[1]


class UserNet(nn.Module):
    """A network defined only here: conv-BN-ReLU, max pooling, a residual block (its skip added to
    conv-BN-ReLU-conv-BN), functional ReLU6 and ReLU, average pooling and ``x.flatten(1)`` into a
    linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                    nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.head = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        x = self.pool(self.stem(x))
        x = F.relu6(x + self.branch(x))
        x = F.avg_pool2d(F.relu(self.head(x)), 2)
        return self.fc(x.flatten(1))


def user_net() -> nn.Module:
    torch.manual_seed(0)
    net = UserNet().eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def frames():
    return torch.from_numpy(synthetic_video(8, 32, 32, seed=2)).double()


@pytest.fixture(scope="module")
def converted(frames):
    return vn.convert(user_net(), frames[:4], act_bits=4, calibration="perchannel")


def test_convert_returns_the_three_networks_and_leaves_the_module_alone(converted, frames):
    net = user_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    vn.convert(net, frames[:2])
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert isinstance(converted.graph, vn.SpikingGraph)
    kinds = {type(n).__name__ for n in converted.graph.nodes}
    assert {"Conv", "Neuron", "Add", "MaxPool", "AvgPool", "Flatten", "Linear"} <= kinds
    with torch.no_grad():
        assert torch.allclose(converted.ann(frames[:2]).float(), user_net()(frames[:2].float()), atol=1e-5)


@pytest.mark.parametrize("backend", ["spikingjelly", "torch"])
@pytest.mark.parametrize("schedule,precision", [("timestep", "fixed"), ("layerwise", "fixed"),
                                                ("timestep", "float64")])
def test_a_user_network_streams_level_for_level_equal_to_its_qann(converted, frames, backend, schedule,
                                                                   precision):
    result = vn.run(converted, frames, backend=backend, schedule=schedule, precision=precision)
    assert len(result.frames) == len(frames) == len(result.outputs)
    assert result.level_mismatch == 0
    assert all(f["max_abs_err"] < 1e-9 and f["converged"] for f in result.frames)
    for out, ref in zip(result.outputs, result.reference, strict=True):  # integers are exact, floats round
        assert torch.equal(out, ref) if precision == "fixed" else torch.allclose(out, ref, rtol=0, atol=1e-12)
    keys = {"timesteps", "sops", "input_macs", "ann_macs", "spikes", "max_abs_err", "level_mismatch"}
    assert keys <= set(result.frames[0])
    if backend == "spikingjelly":  # the second frame of a LoCC stream only sends what changed
        assert 0 < result.frames[1]["sops"] < result.frames[0]["sops"]


def test_the_cli_takes_the_same_network_as_module_factory(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--backend", "spikingjelly", "--task", "stream", "--model", "tests.test_api:user_net",
                 "--input-size", "32x32", "--frames", "4", "--compare", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "tests.test_api:user_net"
    assert report["summary"]["compare"]["locc"]["level_mismatch_max"] == 0
    assert report["summary"]["compare"]["reset"]["level_mismatch_max"] == 0


@pytest.mark.parametrize("argv,message", [
    (["--model", "tests.test_api:nothing_here"], "has no callable 'nothing_here'"),
    (["--model", "no_such_package.mod:f"], "cannot import no_such_package.mod"),
    (["--model", "tests.test_api:not_a_module"], "returned Tensor, not a torch nn.Module"),
    (["--model", "tests.test_api:gelu_net"], r"act \(GELU\): no spiking equivalent"),
    (["--model", "tiny", "--input-norm", "imagenet"], "--input-norm applies to a package.module:factory"),
    (["--spikes", "graded"], "spikes 'graded' needs schedule 'layerwise'"),
    (["--backend", "lava", "--hysteresis", "0.25", "--schedule", "layerwise", "--no-compare"],
     "backend 'lava' does not support hysteresis"),
])
def test_bad_models_and_option_combinations_are_one_line_errors(argv, message, capsys):
    base = ["--backend", "spikingjelly", "--task", "stream", "--frames", "2", "--input-size", "16x16"]
    if "--backend" in argv:
        base = base[2:]
    assert main([*base, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err


def not_a_module():
    return torch.zeros(1)


class GeluNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.conv(x))


def gelu_net() -> nn.Module:
    return GeluNet()


def test_constructs_the_spiking_graph_cannot_express_name_what_and_where(frames):
    class Concat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], 1)

    with pytest.raises(vn.ConversionError, match=r"cat \(call_function cat\): no spiking equivalent"):
        vn.convert(Concat(), frames[:2])

    class Untraceable(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(vn.ConversionError, match="Untraceable: torch.fx cannot trace this network"):
        vn.convert(Untraceable(), frames[:2])
    with pytest.raises(ValueError, match=r"expected frames shaped \(N, C, H, W\)"):
        vn.convert(user_net(), frames[0])


def test_options_are_checked_once_and_each_backend_says_what_it_cannot_run(converted, frames):
    with pytest.raises(vn.OptionsError, match="schedule 'bogus'"):
        vn.ExecutionOptions(schedule="bogus")
    with pytest.raises(vn.OptionsError, match="hysteresis runs in the layerwise schedule and locc mode only"):
        vn.ExecutionOptions(hysteresis=0.2, mode="reset", schedule="layerwise")
    with pytest.raises(vn.UnsupportedOptionsError, match="'lava' does not support device 'cuda'"):
        vn.run(converted, frames, backend="lava", device="cuda")
    with pytest.raises(vn.UnknownBackendError, match="valid backends: lava, spikingjelly, torch"):
        vn.run(converted, frames, backend="tpu")
    with pytest.raises(ValueError, match=r"frames: expected \(T, 3, 32, 32\)"):
        vn.run(converted, frames[:, :, :16])


def test_the_readme_python_example_runs_as_written():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README.md has no ```python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 (the README's own example)
    assert namespace["result"].level_mismatch == 0
