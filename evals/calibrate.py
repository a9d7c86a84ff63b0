"""`python -m evals.calibrate`: calibrate a QANN once and save it, for later runs' ``--weights``.

The file (HDF5) holds the float network, the calibrated QANN (scales, per channel where the method
gives them, and fine-tuned weights) and a record of the model, activation bits, input size, method
and calibration frames (source and indices).  ``python -m evals.run --weights FILE`` then uses it
as saved, without recalibrating.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from evals.cli.arguments import (
    ArgParser,
    UsageError,
    act_bits,
    non_negative,
    output_file,
    parse_crop,
    parse_size,
    positive,
    positive_float,
)
from evals.data.errors import DataError
from evals.harness.config import EvalConfig
from evals.harness.stream import load_frames
from vistream_neuro import calibration, models
from vistream_neuro.models import CheckpointError, ModelError
from vistream_neuro.normalisation import NORMS, input_norm
from vistream_neuro.pipeline import CALIBRATION_FRAMES, normalise
from vistream_neuro.quant import make_qann
from vistream_neuro.tracing import ConversionError
from vistream_neuro.video import VideoError


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="python -m evals.calibrate", description=__doc__.splitlines()[0],
                  dash_values=("--crop",))
    p.add_argument("--model", default="mobilenetv2",
                   help=f"one of: {', '.join(models.MODELS)}, or package.module:factory")
    p.add_argument("--input-norm", choices=NORMS,
                   help="input normalisation of a package.module:factory model (default none)")
    p.add_argument("--weights", type=Path, help="float checkpoint (state dict) for --model")
    p.add_argument("--data", default="synthetic", help="synthetic (default) or a video file / frame folder")
    p.add_argument("--start", type=non_negative, default=0, help="first frame of the video")
    p.add_argument("--frames", type=positive, default=4 * CALIBRATION_FRAMES,
                   help=f"calibration frames (default {4 * CALIBRATION_FRAMES}; evals.run calibrates on its "
                        f"first {CALIBRATION_FRAMES})")
    p.add_argument("--input-size", type=parse_size, help="network input HxW (default per model)")
    p.add_argument("--crop", type=parse_crop, help="X,Y,W,H crop of each video frame before resizing")
    p.add_argument("--act-bits", type=act_bits, default=4, help="activation bits, 2 to 16 (default 4)")
    p.add_argument("--calibration", choices=calibration.METHODS, default="distill")
    p.add_argument("--stability-weight", type=positive_float, metavar="W",
                   help="--calibration stable: weight of its penalty on the operations per ANN MAC that "
                        "level changes between consecutive frames cost "
                        f"(default {calibration.STABILITY_WEIGHT})")
    p.add_argument("--spatial", action="store_true",
                   help="distill against the feature map (as tracking tasks use it), not pooled features")
    p.add_argument("--steps", type=positive, default=calibration.DistillConfig.steps, help="distill steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="calibration file to write (.h5)")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        output_file(args.out)
        if args.stability_weight is not None and args.calibration != "stable":
            raise UsageError(f"--stability-weight applies to --calibration stable, not {args.calibration}")
        stable = args.calibration == "stable"
        stability = (args.stability_weight or calibration.STABILITY_WEIGHT) if stable else 0.0
        if stable and args.frames < 2:
            raise UsageError(f"--calibration stable needs 2 or more consecutive --frames, got {args.frames}")
        models.check_model(args.model)
        size = args.input_size or models.default_input_size(args.model)
        norm = input_norm(args.input_norm)
        source = args.data if args.data == "synthetic" else Path(args.data)
        config = EvalConfig(backend="torch", model=args.model, source=source, start=args.start,
                            frames=args.frames, input_size=size, crop=args.crop, seed=args.seed)
        frames = normalise(load_frames(config).double(), args.model, norm)
        start = time.perf_counter()
        ann = models.build(args.model, seed=args.seed, weights=args.weights, spatial=args.spatial).double()
        qann = make_qann(ann, args.act_bits).double()
        distill = calibration.DistillConfig(steps=args.steps, seed=args.seed, stability=stability)
        calibration.calibrate_qann(qann, frames, args.calibration, seed=args.seed,
                                   distill_config=distill)
        first = 0 if source == "synthetic" else args.start
        meta = calibration.record(
            args.model, args.act_bits, size, args.calibration,
            source=f"synthetic (seed {args.seed})" if source == "synthetic" else str(source),
            indices=list(range(first, first + len(frames))), seed=args.seed,
            seconds=time.perf_counter() - start, stability=stability, crop=args.crop, spatial=args.spatial,
            base_weights=None if args.weights is None else str(args.weights),
            distill_steps=args.steps if args.calibration in ("distill", "stable") else None)
        with torch.no_grad():
            cosine = torch.nn.functional.cosine_similarity(ann(frames).flatten(1), qann(frames).flatten(1))
        meta["qann_cosine_to_ann"] = float(cosine.mean())
        calibration.save_calibration(args.out, ann, qann, meta)
        print(f"{args.calibration}: QANN cosine to float {meta['qann_cosine_to_ann']:.4f} on the "
              f"calibration frames; written: {args.out}")
    except (UsageError, CheckpointError, ModelError, ConversionError, VideoError, DataError) as exc:
        print(f"evals.calibrate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
