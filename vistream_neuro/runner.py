"""The one runner loop: the dense ANN, the QANN reference and every simulated run of a comparison
on the same frames, frame by frame, each run's output checked against the reference.

A comparison is a set of named runs (:class:`RunSpec`): the primary run is named after its mode;
``compare`` adds ``reset`` and ``locc``, ``all_schedules`` the layer-wise LoCC runs
(:data:`SCHEDULE_RUNS`), ``sigma_delta`` the sigma-delta baseline.  Everything each frame yields
(outputs and per-run records) is what reports, heads and the public API read
(docs/ARCHITECTURE.md, "The runner").
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vistream_neuro import ir
from vistream_neuro.accounting import FrameOps, OpCounter, dense_macs
from vistream_neuro.backend import Backend, get_backend, lower
from vistream_neuro.deploy import Deployment, deploy, input_band, sigma_delta
from vistream_neuro.diagnostics import warn
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import Converted
from vistream_neuro.reference import DenseQANN
from vistream_neuro.spike_trains import FrameTrains, SpikeRecorder
from vistream_neuro.streaming import FrameResult, hold_small_changes, run_stream

SIGMA_DELTA = "sigma_delta"
# the extra LoCC runs of a comparison over every schedule: run name -> (schedule, spike encoding)
SCHEDULE_RUNS = {"layerwise": ("layerwise", "ternary"), "layerwise_graded": ("layerwise", "graded")}


@dataclass(frozen=True)
class RunSpec:
    """One simulated run: the graph it executes and how.  A ``baseline`` has no QANN to equal (the
    sigma-delta baseline): it is compared with the ANN instead."""

    deployment: Deployment
    options: ExecutionOptions
    baseline: bool = False


def comparison_options(options: ExecutionOptions, *, compare: bool = False, all_schedules: bool = False,
                       sigma_delta_factor: float | None = None) -> dict[str, tuple[ExecutionOptions, bool]]:
    """Per run of a comparison, its options and whether it is a baseline (validated: an impossible
    combination raises :class:`vistream_neuro.options.OptionsError` before anything runs)."""
    modes = ["reset", "locc"] if compare else [options.mode]
    runs = {mode: (replace(options, mode=mode), False) for mode in modes}
    if all_schedules:
        runs |= {name: (replace(options, mode="locc", schedule=schedule, spikes=spikes), False)
                 for name, (schedule, spikes) in SCHEDULE_RUNS.items()}
    if sigma_delta_factor is not None:  # it streams differences of float frames through the float graph
        float_precision = "float64" if options.integer else options.precision
        runs[SIGMA_DELTA] = (replace(options, precision=float_precision, mode="locc", schedule="timestep",
                                     spikes="ternary", hysteresis=0.0), True)
    return runs


def comparison_runs(net: Converted, options: ExecutionOptions, *, compare: bool = False,
                    all_schedules: bool = False, sigma_delta_factor: float | None = None,
                    ) -> dict[str, RunSpec]:
    """The runs of a comparison, the deployed graph made once for all that share it."""
    runs = comparison_options(options, compare=compare, all_schedules=all_schedules,
                              sigma_delta_factor=sigma_delta_factor)
    main = deploy(net, options)
    baseline = sigma_delta(net, sigma_delta_factor) if sigma_delta_factor is not None else None
    return {name: RunSpec(baseline if is_baseline else main, run_options, is_baseline)
            for name, (run_options, is_baseline) in runs.items()}


@dataclass
class FrameRecord:
    """One frame of one run, next to the QANN."""

    index: int
    timesteps: int
    converged: bool
    max_abs_err: float  # max |run - QANN| of the output (a baseline: max |run - ANN|)
    level_mismatch: float  # fraction of neurons whose level differs from the QANN's (NaN: baseline)
    ops: FrameOps
    sequence: str = ""
    judger_step: bool = False  # ViStream's quiescence rule needs (or, with it, took) one more step
    quiescence: str = "spikes"  # the rule the run followed

    @property
    def timesteps_by_rule(self) -> dict[str, int]:
        """The frame's steps under each quiescence rule (``spikes``: ours, ``vistream``: its Judger)."""
        ours = self.timesteps - (self.judger_step if self.quiescence == "vistream" else 0)
        return {"spikes": ours, "vistream": ours + self.judger_step}

    def as_dict(self, ann_macs: int) -> dict:
        """The frame as report.json's ``frames`` entries have it."""
        ops = self.ops
        return {**({"sequence": self.sequence} if self.sequence else {}),
                "index": self.index, "timesteps": self.timesteps, "converged": self.converged,
                "sops": ops.total_sops, "input_macs": ops.total_input_macs, "ann_macs": ann_macs,
                "spikes": ops.total_spikes, "spikes_pos": sum(ops.spikes_pos.values()),
                "spikes_neg": sum(ops.spikes_neg.values()), "min_spikes": ops.total_min_spikes,
                "max_abs_err": self.max_abs_err, "level_mismatch": self.level_mismatch}


@dataclass
class StreamResult:
    graph: ir.SpikingGraph
    ann_macs: dict[str, int]  # per layer, one dense pass
    runs: dict[str, list[FrameRecord]] = field(default_factory=dict)  # per run
    qann_cosine_to_ann: float = float("nan")
    fixed_cosine_to_qann: float | None = None  # integer graph: integer vs float QANN outputs
    float_qann_cosine_to_ann: float | None = None  # integer graph: the float QANN's, for the cost
    fixed_dtype: str | None = None  # integer graph: float32, or float64 where sums may reach 2^24
    sigma_delta_cosine_to_ann: float | None = None  # the sigma-delta baseline's outputs vs the ANN's
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # task metrics per network
    sequences: list[dict] = field(default_factory=list)  # per sequence: name, frames, metrics
    warnings: list[str] = field(default_factory=list)  # what the run's figures depend on (RunWarning)
    spike_trains: list[FrameTrains] | None = None  # the recorded run's messages per frame (``record``)
    # network -> sequence -> tracker output (MOT rows, or MOTS rows with masks)
    tracks: dict[str, dict[str, np.ndarray | list]] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)  # file name -> a task's picture (BGR uint8)


@dataclass
class LockstepFrame:
    """One frame through every network: ANN, QANN (reference) and run outputs, in float units."""

    ann: torch.Tensor
    qann: torch.Tensor
    snn: dict[str, torch.Tensor]  # per run
    records: dict[str, FrameRecord]  # per run


@dataclass
class LockstepPart:
    """What streaming some sequences added to a comparison's result: per run its frame records, the
    per-frame cosines behind the mean figures, the integer graph's dtype.  A sequence streamed by a
    :meth:`Lockstep.fork` (here or in another process) adds up, through :meth:`Lockstep.absorb`, to
    exactly what streaming it on the runner itself gives."""

    runs: dict[str, list[FrameRecord]]
    cosines: dict[str, list[float]]
    fixed_dtype: str | None


def _record(ref: FrameResult, res: FrameResult, sequence: str, quiescence: str) -> FrameRecord:
    err = (res.output - ref.output).abs().max().item()
    total = sum(v.numel() for v in ref.levels.values())
    differ = sum(int((res.levels[k] != v).sum()) for k, v in ref.levels.items())
    return FrameRecord(res.index, res.timesteps, res.converged, err, differ / total, res.ops, sequence,
                       res.judger_step, quiescence)


def _baseline_record(ann: torch.Tensor, res: FrameResult, sequence: str, quiescence: str) -> FrameRecord:
    err = (res.output.double().cpu() - ann).abs().max().item()
    return FrameRecord(res.index, res.timesteps, res.converged, err, float("nan"), res.ops, sequence,
                       res.judger_step, quiescence)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return F.cosine_similarity(a.flatten(1), b.flatten(1)).item()


class Lockstep:
    """Runs the dense ANN, the QANN reference and the runs ``runs`` on the same frames.

    One instance serves several sequences: each call of :meth:`run` starts fresh simulators (no
    state crosses sequences).  Every frame's run-vs-QANN record goes into :attr:`result`;
    :meth:`finish` completes it.  ``input_deadband``: 8-bit steps a value must move by before a
    change-detecting input sends it again (QANN and runs see the held frames, the ANN the real ones).
    ``frames_total``: frames to run over all sequences, for backends that refuse impractical runs.
    ``record``: a run whose spike trains to keep (:attr:`StreamResult.spike_trains`), for replay.
    """

    def __init__(self, net: Converted, runs: dict[str, RunSpec], backend: str | Backend, *,
                 input_deadband: int = 0, frames_total: int | None = None, record: str | None = None) -> None:
        if not runs:
            raise ValueError("a comparison needs at least one run")
        if record is not None and record not in runs:
            raise ValueError(f"record={record!r}: no such run; runs are {', '.join(runs)}")
        self.net, self.runs, self.input_deadband, self.record = net, runs, input_deadband, record
        self.backend = backend if isinstance(backend, Backend) else get_backend(backend)
        for spec in runs.values():
            self.backend.check(spec.options)
        primary = next(spec for spec in runs.values() if not spec.baseline)
        self.deployment, self.options = primary.deployment, primary.options
        self.graph = self.deployment.graph
        if self.backend.check_run is not None and frames_total is not None:
            self.backend.check_run(self.graph, frames_total * len(runs), self.options.force)
        output = self.graph.node(self.graph.output)
        self._payload = (torch.as_tensor(output.output_scale, dtype=torch.float64)
                         if isinstance(output, ir.Neuron) else None)
        self._cosines: dict[str, list[float]] = {"qann": [], "fixed": [], "float": [], SIGMA_DELTA: []}
        self.result = StreamResult(self.graph, dense_macs(self.graph), {name: [] for name in runs},
                                   spike_trains=None if record is None else [])

    @property
    def names(self) -> list[str]:
        return list(self.runs)

    def fork(self) -> Lockstep:
        """A runner of the same comparison (same networks and deployed graphs) with nothing recorded."""
        twin = copy.copy(self)
        twin.result = StreamResult(self.graph, self.result.ann_macs, {name: [] for name in self.runs})
        twin._cosines = {k: [] for k in self._cosines}
        return twin

    @property
    def part(self) -> LockstepPart:
        """Everything recorded so far, for another runner to :meth:`absorb`."""
        return LockstepPart(self.result.runs, self._cosines, self.result.fixed_dtype)

    def absorb(self, part: LockstepPart) -> None:
        """Append ``part`` (of a fork of this comparison) as if its sequences had streamed here."""
        for name, records in part.runs.items():
            self.result.runs[name].extend(records)
        for key, values in part.cosines.items():
            self._cosines[key].extend(values)
        if part.fixed_dtype is not None:
            self.result.fixed_dtype = part.fixed_dtype

    def run(self, frames: torch.Tensor, desc: str = "frames", sequence: str = "") -> Iterator[LockstepFrame]:
        """``frames``: network inputs (normalised) ``(T, C, H, W)``, one stream."""
        batch = [f[None] for f in frames]
        held = batch
        if self.input_deadband:
            band = input_band(self.net, self.input_deadband)
            held = list(hold_small_changes(batch, band.to(batch[0])))
        encoded = [self.deployment.encode(f) for f in held]
        dtype = self.deployment.dtype(self.options, encoded)
        if self.deployment.integer:
            self.result.fixed_dtype = str(dtype).removeprefix("torch.")
        # levels with hysteresis remember the last frame: the reference streams as the run does
        reference_options = replace(self.options, mode="locc" if self.options.hysteresis else "reset",
                                    quiescence="spikes")
        reference = run_stream(DenseQANN(self.graph, self.options.device, dtype), encoded, reference_options)
        sims, streams, recorder = [], [], None
        try:
            for name, spec in self.runs.items():
                same_graph = spec.deployment is self.deployment
                run_dtype, feed = (dtype, encoded) if same_graph else (spec.options.float_dtype, held)
                sim = lower(spec.deployment.graph, self.backend, spec.options, run_dtype)
                sims.append(sim)
                if name == self.record:
                    counter = recorder = SpikeRecorder(spec.deployment.graph, spec.options)
                else:
                    counter = OpCounter(spec.deployment.graph, spec.options)
                streams.append(run_stream(sim, feed, spec.options, counter))
            for frame, seen, ref, *simulated in tqdm(zip(batch, held, reference, *streams, strict=True),
                                                     total=len(batch), desc=desc, disable=None, leave=False):
                yield self._frame(frame, seen, ref, simulated, sequence)
        finally:
            for sim in sims:
                sim.close()
            if recorder is not None:
                self.result.spike_trains.extend(recorder.frames)

    def _frame(self, frame: torch.Tensor, seen: torch.Tensor, ref: FrameResult, simulated: list[FrameResult],
               sequence: str) -> LockstepFrame:
        """``frame``: the real input (the ANN's), ``seen``: what the QANN and the runs got."""
        qann = self.deployment.decode(self._readout(ref))
        with torch.no_grad():
            ann = self.net.ann(frame)
            self._cosines["qann"].append(_cosine(ann, qann))
            if self.deployment.integer:
                float_qann = self.net.qann(seen)
                self._cosines["fixed"].append(_cosine(float_qann, qann))
                self._cosines["float"].append(_cosine(float_qann, ann))
        outputs, records = {}, {}
        for (name, spec), res in zip(self.runs.items(), simulated, strict=True):
            if spec.baseline:
                outputs[name] = res.output.double().cpu()
                records[name] = _baseline_record(ann, res, sequence, spec.options.quiescence)
                self._cosines[SIGMA_DELTA].append(_cosine(ann, outputs[name]))
            else:
                outputs[name] = self.deployment.decode(self._readout(res))
                records[name] = _record(ref, res, sequence, spec.options.quiescence)
            self.result.runs[name].append(records[name])
        return LockstepFrame(ann, qann, outputs, records)

    def _readout(self, res: FrameResult) -> torch.Tensor:
        """The output the heads see: the output neurons' level counts times their payload.

        A spiking output is an integer count of quanta; reading it as that count (not as the float
        sum of its spikes, which differs from the QANN's value by rounding, ~1e-14) makes the SNN's
        features bit-identical to the QANN's whenever their levels agree, so heads with continuous
        outputs (keypoint positions, scores) give identical results too.
        """
        if self._payload is None:
            return res.output.double().cpu()
        payload = self._payload
        if payload.ndim == 1:
            payload = payload.reshape(-1, *([1] * (res.output.ndim - 2)))
        return res.levels[self.graph.output].double().cpu() * payload

    def finish(self) -> StreamResult:
        """The result with the mean cosines of QANN to ANN outputs and (integer graph only) of the
        integer to the float QANN and of the float QANN to the ANN (the integer graph's cost)."""
        for name, records in self.result.runs.items():
            unsettled = sum(not r.converged for r in records)
            if unsettled:
                warn(f"run {name}: {unsettled} of {len(records)} frames did not settle within t_max="
                     f"{self.runs[name].options.t_max} steps, so their outputs are not the QANN's; "
                     "raise t_max")
        mean = {k: sum(v) / len(v) if v else None for k, v in self._cosines.items()}
        self.result.qann_cosine_to_ann = mean["qann"]
        if self.deployment.integer:
            self.result.fixed_cosine_to_qann = mean["fixed"]
            self.result.float_qann_cosine_to_ann = mean["float"]
        self.result.sigma_delta_cosine_to_ann = mean[SIGMA_DELTA]
        return self.result
