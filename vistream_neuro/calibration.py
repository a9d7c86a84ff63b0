"""QANN quality beyond per-tensor scales: per-channel scales, bias correction, distillation, and
calibration files.

Methods (``METHODS``):

- ``percentile`` / ``mse``: one scale per quantizer (:func:`vistream_neuro.quant.calibrate`).
- ``perchannel``: one scale per output channel, each minimising its channel's squared quantisation
  error, then bias correction: every conv/linear (with the BatchNorm it feeds) has its bias shifted
  by the mean error quantisation causes in its output on the calibration frames (Nagel et al.,
  ICCV 2019), layer after layer, so each correction sees the corrected layers before it.
- ``distill``: ``perchannel``, then a short quantisation-aware fine-tuning of scales (LSQ, learned in
  log space so they stay > 0) and weights against the float network on the calibration frames:
  its output and every quantizer's float activation, with a straight-through estimator for the
  rounding.
- ``stable``: ``distill`` whose loss also counts the operations that level changes between
  consecutive calibration frames would cost (:func:`level_change_ops`: a smooth staircase in place
  of rounding, each change weighed by the neuron's fan-out, per ANN MAC), times
  ``DistillConfig.stability``: scales, biases and weights learn to keep levels still where the
  input barely moves, at the accuracy the first term asks for.  The frames must be consecutive.

Every method leaves a QANN of conv/linear/BatchNorm layers and quantizers with new float
parameters, so the spiking graph converted from it still equals it exactly.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import fx, nn
from tqdm import tqdm

from vistream_neuro import accounting
from vistream_neuro.atomic import write_h5_atomic
from vistream_neuro.converter import neuron_modules, to_spiking_graph
from vistream_neuro.models import CheckpointError
from vistream_neuro.quant import NeuronBounds, Quantizer, calibrate, neuron_bounds, observe

METHODS = ("percentile", "mse", "perchannel", "distill", "stable")
FORMAT, VERSION = "vistream-neuro-calibration", 1
MIN_SCALE_RATIO = 1 / 64  # per-channel scales stay above this fraction of the layer's largest


@dataclass(frozen=True)
class DistillConfig:
    """Steps, learning rates and loss weights of :func:`distill`; the defaults take about 1.5
    minutes for MobileNetV2 at 128x64 on two CPU cores."""

    steps: int = 400
    batch: int = 8
    lr_weights: float = 2e-4
    lr_scales: float = 1e-2
    features: float = 3.0  # weight of the per-quantizer feature loss beside the output's
    seed: int = 0
    stability: float = 0.0  # weight of the level-change operations per ANN MAC (method stable)
    temperature: float = 0.1  # width, in steps, of the smooth staircase's risers


STABILITY_WEIGHT = 1.0  # the stable method's default DistillConfig.stability


def quantizers(model: nn.Module) -> dict[str, Quantizer]:
    return {name: m for name, m in model.named_modules() if isinstance(m, Quantizer)}


def float_reference(qann: nn.Module) -> nn.Module:
    """A copy of ``qann`` with every quantizer replaced by the activation it stands for: the float
    network, with the QANN's module names."""
    ref = copy.deepcopy(qann)
    for name, q in quantizers(ref).items():
        ref.set_submodule(name, q.float_fn)
    return ref


def _channel_mse_scales(x: torch.Tensor, q: Quantizer, candidates: int = 100) -> torch.Tensor:
    """Per channel of ``x`` (``(C, M)``), the grid scale with the smallest squared error."""
    target = q.float_fn(x)
    hi = x.clamp(min=0).amax(1) / q.pos_max
    lo = (-x).clamp(min=0).amax(1) / -q.neg_min if q.neg_min else torch.zeros_like(hi)
    top = torch.maximum(hi, lo)
    best, best_err = top.clone(), torch.full_like(top, float("inf"))
    for f in np.linspace(1 / candidates, 1.0, candidates):
        s = (top * f).clamp(min=1e-30)[:, None]
        err = ((s * torch.clamp(torch.floor(x / s + 0.5), q.neg_min, q.pos_max) - target) ** 2).mean(1)
        better = err < best_err
        best, best_err = torch.where(better, s[:, 0], best), torch.where(better, err, best_err)
    peak = float(best.max())
    if peak <= 0:
        return torch.ones_like(best)
    return best.clamp(min=peak * MIN_SCALE_RATIO)


@torch.no_grad()
def calibrate_per_channel(qann: nn.Module, frames: torch.Tensor, max_samples: int = 200_000,
                          seed: int = 0) -> nn.Module:
    """One scale per channel of every quantizer (a ``(C,)`` scale; flattened inputs: per feature)."""
    qs = list(quantizers(qann).values())
    gen = torch.Generator().manual_seed(seed)
    for q, x in zip(qs, observe(qann, frames), strict=True):
        x = x.transpose(0, 1).reshape(x.shape[1], -1)
        if x.numel() > max_samples:
            keep = max(1, max_samples // x.shape[0])
            x = x[:, torch.randperm(x.shape[1], generator=gen)[:keep]]
        q.set_scale(_channel_mse_scales(x, q))
    return qann


def _bias_targets(qann: fx.GraphModule) -> list[str]:
    """Per conv/linear, the module whose output bias to correct: the BatchNorm it alone feeds, or
    itself."""
    targets = []
    for node in qann.graph.nodes:
        if node.op != "call_module" or not isinstance(qann.get_submodule(node.target), nn.Conv2d | nn.Linear):
            continue
        users = list(node.users)
        bn = qann.get_submodule(users[0].target) if len(users) == 1 and users[0].op == "call_module" else None
        targets.append(users[0].target if isinstance(bn, nn.BatchNorm2d) and bn.affine else node.target)
    return targets


def _channel_mean(y: torch.Tensor) -> torch.Tensor:
    return y.mean(dim=[d for d in range(y.ndim) if d != 1])


@torch.no_grad()
def correct_bias(qann: fx.GraphModule, frames: torch.Tensor) -> nn.Module:
    """Empirical bias correction, in one pass: each target's output is shifted (and its bias
    changed) by the mean difference to the float network there, before later layers see it."""
    names = _bias_targets(qann)
    ref = float_reference(qann)
    means: dict[str, torch.Tensor] = {}
    hooks = [ref.get_submodule(n).register_forward_hook(
        lambda _m, _i, y, n=n: means.__setitem__(n, _channel_mean(y))) for n in names]
    try:
        ref(frames)
    finally:
        for h in hooks:
            h.remove()

    def correct(module: nn.Module, _inputs, y: torch.Tensor, name: str) -> torch.Tensor:
        shift = _channel_mean(y) - means[name]
        if module.bias is None:
            module.bias = nn.Parameter(torch.zeros_like(shift))
        module.bias -= shift
        return y - shift.reshape(-1, *([1] * (y.ndim - 2)))

    hooks = [qann.get_submodule(n).register_forward_hook(
        lambda m, i, y, n=n: correct(m, i, y, n)) for n in names]
    try:
        qann(frames)
    finally:
        for h in hooks:
            h.remove()
    return qann


class _LearnedQuantizer(nn.Module):
    """A quantizer with a learned log scale; round-to-nearest passes gradients straight through
    and the clamp gives the LSQ gradient to the scale."""

    def __init__(self, q: Quantizer) -> None:
        super().__init__()
        self.pos_max, self.neg_min = q.pos_max, q.neg_min
        self.log_scale = nn.Parameter(q.scale.detach().float().log())

    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def levels(self, x: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """The levels of input ``x``: rounded, or a smooth staircase of ``temperature``."""
        s = self.scale()
        v = x / (s.reshape(-1, *([1] * (x.ndim - 2))) if s.ndim else s)
        if temperature is None:
            return torch.clamp(torch.floor(v + 0.5), self.neg_min, self.pos_max)
        return smooth_levels(v, self.neg_min, self.pos_max, temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale()
        s = s.reshape(-1, *([1] * (x.ndim - 2))) if s.ndim else s
        v = x / s
        v = v + (torch.floor(v + 0.5) - v).detach()
        return s * torch.clamp(v, self.neg_min, self.pos_max)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips, shifts (reflect-padded crops) and brightness/contrast of normalised frames, so
    a few calibration frames stand for the stream."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, min(h, w) // 8)
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=gen)
    x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    gain = 0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen)
    offset = 0.2 * (torch.rand(n, 1, 1, 1, generator=gen) - 0.5)
    return x * gain + offset


def _relative_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    out, target = out.flatten(1), target.flatten(1)
    return ((out - target) ** 2).sum(1).div(target.pow(2).sum(1).clamp(min=1e-12)).mean()


def _taps(model: nn.Module, names: list[str], inputs: bool = False) -> dict[str, torch.Tensor]:
    """The outputs (``inputs``: the inputs) of ``model``'s modules ``names`` at its last forward
    pass, filled by hooks."""
    taps: dict[str, torch.Tensor] = {}
    for name in names:
        model.get_submodule(name).register_forward_hook(
            lambda _m, i, y, n=name: taps.__setitem__(n, i[0] if inputs else y))
    return taps


def smooth_levels(v: torch.Tensor, neg_min: int, pos_max: int, temperature: float) -> torch.Tensor:
    """A differentiable stand-in for ``clamp(round(v), neg_min, pos_max)``: a staircase whose risers
    are sigmoids about ``temperature`` steps wide, equal to it at the integers, so its gradient
    lives near the rounding boundaries and pushes values (or boundaries) apart."""
    v = v.clamp(neg_min, pos_max)
    base = torch.floor(v).detach()
    edge = torch.sigmoid(torch.tensor(0.5 / temperature, dtype=v.dtype))
    return base + (torch.sigmoid((v - base - 0.5) / temperature) - (1 - edge)) / (2 * edge - 1)


def change_costs(qann: nn.Module, input_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Per quantizer of ``qann`` (by module path), what one level change of each of its entries
    costs a graded layer-wise frame, in synaptic operations per MAC of the dense network
    (:func:`vistream_neuro.accounting.neuron_fanout` over :func:`~vistream_neuro.accounting.dense_macs`)."""
    graph = to_spiking_graph(qann, tuple(input_shape))
    macs = sum(accounting.dense_macs(graph).values())
    modules = neuron_modules(qann)
    fanout = accounting.neuron_fanout(graph)
    return {modules[name]: torch.from_numpy(cost / macs) for name, cost in fanout.items()}


def _change_ops(levels: dict[str, torch.Tensor], costs: dict[str, torch.Tensor], before: slice,
                after: slice) -> torch.Tensor:
    """Mean over frame pairs of the operations per ANN MAC of the levels that changed from
    ``levels[name][before]`` to ``levels[name][after]`` (a change of more than one level counts
    once, as one graded message does)."""
    total = sum(((lv[after] - lv[before]).abs().clamp(max=1) * costs[name].to(lv)).flatten(1).sum(1)
                for name, lv in levels.items())
    return total.mean()


def level_change_ops(qann: nn.Module, frames: torch.Tensor) -> float:
    """The graded layer-wise operations per ANN MAC that ``qann``'s level changes cost between
    consecutive ``frames`` (mean over the pairs; without the input layer's MACs)."""
    names = list(quantizers(qann))
    costs = change_costs(qann, tuple(frames.shape[1:]))
    inputs: dict[str, torch.Tensor] = {}
    hooks = [qann.get_submodule(n).register_forward_hook(lambda _m, i, _y, n=n: inputs.__setitem__(n, i[0]))
             for n in names]
    try:
        with torch.no_grad():
            qann(frames)
    finally:
        for h in hooks:
            h.remove()
    levels = {}
    for name in names:
        q, x = qann.get_submodule(name), inputs[name]
        levels[name] = torch.clamp(torch.floor(x / q.broadcast_scale(x) + 0.5), q.neg_min, q.pos_max)
    return float(_change_ops(levels, costs, slice(None, -1), slice(1, None)))


def distill(qann: nn.Module, reference: nn.Module, frames: torch.Tensor,
            config: DistillConfig | None = None) -> nn.Module:
    """Fine-tune ``qann``'s scales and weights (in float32, BatchNorm statistics frozen) against the
    float network ``reference`` (:func:`float_reference` of the uncalibrated QANN: same module
    names) on augmented ``frames``: the loss is the relative error of the output plus
    ``config.features`` times the mean relative error at every quantizer, so each layer learns to
    match its own float activation (a dense signal that a few frames can carry).

    With ``config.stability`` > 0 the batches are pairs of consecutive frames (each pair augmented
    alike) and the loss adds ``config.stability`` times the operations per ANN MAC that the pairs'
    level changes cost, counted on :func:`smooth_levels` and weighed by :func:`change_costs`.

    The results are written back into ``qann`` only if they improve the objective (the relative
    error of the output, plus the stability term counted on rounded levels) on the unaugmented
    frames."""
    config = config or DistillConfig()
    stable = config.stability > 0
    if stable and len(frames) < 2:
        raise ValueError(f"a stable calibration needs 2 or more consecutive frames, got {len(frames)}")
    costs = change_costs(qann, tuple(frames.shape[1:])) if stable else {}
    student = copy.deepcopy(qann).float().eval()
    teacher = copy.deepcopy(reference).float().eval().requires_grad_(False)
    learned = {name: _LearnedQuantizer(q) for name, q in quantizers(student).items()}
    for name, lq in learned.items():
        student.set_submodule(name, lq)
    names = list(learned)
    student_taps, teacher_taps = _taps(student, names), _taps(teacher, names)
    student_inputs = _taps(student, names, inputs=True)
    scales = [lq.log_scale for lq in learned.values()]
    ids = {id(p) for p in scales}
    weights = [p for p in student.parameters() if id(p) not in ids]
    opt = torch.optim.Adam([{"params": weights, "lr": config.lr_weights},
                            {"params": scales, "lr": config.lr_scales}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
    gen = torch.Generator().manual_seed(config.seed)
    data = frames.float()

    def change_ops(temperature: float | None, before: slice, after: slice) -> torch.Tensor:
        levels = {n: lq.levels(student_inputs[n], temperature) for n, lq in learned.items()}
        return _change_ops(levels, costs, before, after)

    def objective() -> torch.Tensor:
        error = _relative_error(student(data), target)
        if not stable:
            return error
        return error + config.stability * change_ops(None, slice(None, -1), slice(1, None))

    with torch.no_grad():
        target = teacher(data)
        before = objective()
    pairs = max(1, config.batch // 2)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        for _ in tqdm(range(config.steps), desc="stable" if stable else "distill", disable=None):
            if stable:  # frames t then frames t + 1, each pair with the same augmentation
                first = torch.randint(0, len(data) - 1, (pairs,), generator=gen)
                x = torch.cat(_augment(torch.cat([data[first], data[first + 1]], 1), gen).chunk(2, 1))
            else:
                x = _augment(data[torch.randint(0, len(data), (config.batch,), generator=gen)], gen)
            with torch.no_grad():
                out_target = teacher(x)
            loss = _relative_error(student(x), out_target)
            if config.features:
                layers = sum(_relative_error(student_taps[n], teacher_taps[n]) for n in names)
                loss = loss + config.features * layers / len(names)
            if stable:
                loss = loss + config.stability * change_ops(config.temperature, slice(None, pairs),
                                                            slice(pairs, None))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        if objective() >= before:
            return qann
        own = dict(qann.named_parameters())
        for name, p in student.named_parameters():
            if name in own:
                own[name].copy_(p.double())
        for name, lq in learned.items():
            qann.get_submodule(name).set_scale(lq.scale().double())
    return qann


def calibrate_qann(qann: fx.GraphModule, frames: torch.Tensor, method: str, seed: int = 0,
                   distill_config: DistillConfig | None = None) -> fx.GraphModule:
    """Calibrate ``qann`` (from :func:`vistream_neuro.quant.make_qann`, float64, not yet
    calibrated: its float weights are the network's) in place on normalised ``frames`` with one of
    :data:`METHODS`.  ``stable`` takes ``distill_config.stability`` (:data:`STABILITY_WEIGHT`
    where that is 0) and consecutive frames."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; valid: {', '.join(METHODS)}")
    config = distill_config or DistillConfig(seed=seed)
    if config.stability and method != "stable":
        raise ValueError(f"a stability weight applies to the stable calibration, not {method}")
    if method == "stable" and not config.stability:
        config = replace(config, stability=STABILITY_WEIGHT)
    frames = frames.to(next(qann.parameters()).dtype)
    if method in ("percentile", "mse"):
        return calibrate(qann, frames, method=method, seed=seed)
    reference = float_reference(qann) if method in ("distill", "stable") else None
    calibrate_per_channel(qann, frames, seed=seed)
    correct_bias(qann, frames)
    if reference is not None:
        distill(qann, reference, frames, config)
    return qann


# calibration files: HDF5 with the float network, the calibrated QANN and what made them


def _write_state(group: h5py.Group, state: dict[str, torch.Tensor]) -> None:
    for key, value in state.items():
        group.create_dataset(key, data=value.detach().cpu().numpy())


def save_calibration(path: str | Path, ann: nn.Module, qann: nn.Module, meta: dict) -> None:
    """Write the float network, the calibrated QANN (scales and weights, float64) and ``meta``
    (model, act_bits, input_size, method, frames, ...) to ``path`` atomically."""

    def write(f: h5py.File) -> None:
        f.attrs.update(format=FORMAT, version=VERSION, meta=json.dumps(meta, sort_keys=True))
        _write_state(f.create_group("ann"), ann.state_dict())
        _write_state(f.create_group("qann"), qann.state_dict())

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_h5_atomic(path, write)


def is_calibration_file(path: str | Path) -> bool:
    """Tell a calibration file (HDF5, this format) from a plain state dict, by content."""
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return f.attrs.get("format") == FORMAT


def calibration_meta(path: str | Path) -> dict:
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["meta"])


def _read_state(path: Path, group: h5py.Group, what: str, module: nn.Module) -> dict[str, torch.Tensor]:
    own = module.state_dict()
    missing = [k for k in own if k not in group]
    extra = [k for k in group if k not in own]
    if missing or extra:
        key = missing[0] if missing else extra[0]
        raise CheckpointError(f"{path}: {what} {'lacks' if missing else 'has unexpected'} key {key!r} "
                              "for this model (calibration file of a different network?)")
    scales = {f"{name}.scale" for name in quantizers(module)}
    state = {}
    for key, value in own.items():
        data = torch.from_numpy(np.asarray(group[key][()]))
        if key in scales and data.ndim <= 1:
            state[key] = data  # per tensor or per channel
            continue
        if tuple(data.shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: {what} key {key!r} has shape {tuple(data.shape)}, the model "
                                  f"needs {tuple(value.shape)}")
        state[key] = data
    return state


def saved_bounds(meta: dict) -> NeuronBounds | None:
    """The neuron bounds a calibration file was made with: its ``level`` (ViStream's convention)
    or its ``act_bits``."""
    try:
        return (NeuronBounds.from_level(meta["level"]) if meta.get("level") is not None
                else NeuronBounds.from_bits(meta.get("act_bits")))
    except ValueError:
        return None


def load_calibration(path: str | Path, model: str, act_bits: int | NeuronBounds, ann: nn.Module,
                     make_qann) -> tuple[nn.Module, nn.Module, dict]:
    """Load a calibration file into ``ann`` (the model's float architecture) and a QANN built by
    ``make_qann(ann, act_bits)``, without recalibrating.  Raises :class:`CheckpointError` naming the
    file and what was expected when it does not fit."""
    path = Path(path)
    meta = calibration_meta(path)
    if meta.get("model") != model or saved_bounds(meta) != neuron_bounds(act_bits):
        made = (f"level {meta['level']}" if meta.get("level") is not None
                else f"{meta.get('act_bits')} activation bits")
        needs = f"{act_bits} bits" if isinstance(act_bits, int) else f"neuron bounds {act_bits.as_dict()}"
        raise CheckpointError(f"{path}: calibration of model {meta.get('model')!r} at {made}; this run "
                              f"needs model {model!r} at {needs}")
    with h5py.File(path, "r") as f:
        ann.load_state_dict(_read_state(path, f["ann"], "ann", ann))
        qann = make_qann(ann, act_bits).double()
        _add_missing_biases(qann, f["qann"])
        state = _read_state(path, f["qann"], "qann", qann)
    for name, q in quantizers(qann).items():
        q.set_scale(state[f"{name}.scale"])
    qann.load_state_dict(state)
    return ann.double(), qann, meta


def _add_missing_biases(qann: nn.Module, keys) -> None:
    """Bias correction gives bias-free layers a bias: give them one before loading."""
    for name, m in qann.named_modules():
        if isinstance(m, nn.Conv2d | nn.Linear) and m.bias is None and f"{name}.bias" in keys:
            m.bias = nn.Parameter(torch.zeros(m.weight.shape[0], dtype=m.weight.dtype))


def record(model: str, act_bits: int, input_size: tuple[int, int], method: str, source: str,
           indices: list[int], seed: int, seconds: float, stability: float | None = None, **extra) -> dict:
    """The metadata a calibration file carries; ``stability``: the stable method's penalty weight
    (``stability_weight``, None for the other methods and in files from before it)."""
    return {"model": model, "act_bits": act_bits, "input_size": list(input_size), "method": method,
            "stability_weight": stability if method == "stable" else None,
            "bias_correction": method in ("perchannel", "distill", "stable"),
            "frames": {"source": source, "indices": [int(i) for i in indices]}, "seed": seed,
            "seconds": round(seconds, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}
