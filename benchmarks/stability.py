"""Events against accuracy for the stable calibration: graded layer-wise LoCC operations per ANN MAC
and the QANN's cosine to the float network on held-out frames, for perchannel, distill and stable
at several penalty weights, at hysteresis 0 and 0.25.

MobileNetV2 (real weights), 4 bits, 128x64 crops of bikes.mp4: a moving-camera shot (from frame
100) and a static one (from frame 160).  Each method calibrates once on the first frames of a clip
(``python -m evals.calibrate``, a calibration file) and is measured by ``python -m evals.run
--weights FILE`` on the frames after them (integer graph); steady ops are the SOPs plus the input
layer's MACs of every frame after the first, per ANN MAC.  Writes
``benchmarks/results/stability/stability.json`` (after every row) and ``stability.png``.

    python benchmarks/stability.py [--steps 400 --weights 0.3 1 --held-out 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from evals import calibrate as calibrate_cli  # noqa: E402
from evals import run as run_cli  # noqa: E402
from evals.data.sample_videos import sample_video  # noqa: E402
from vistream_neuro.atomic import write_atomic  # noqa: E402

CLIPS = {"bikes_static_camera": 160, "bikes_moving_camera": 100}  # bikes.mp4 start frames
CROP, SIZE = "256,8,128,256", "128x64"
HYSTERESES = (0.0, 0.25)


def calibrate(clip: str, method: str, weight: float | None, frames: int, steps: int, out: Path) -> None:
    command = ["--model", "mobilenetv2", "--data", str(sample_video("bikes")), "--start", str(CLIPS[clip]),
               "--frames", str(frames), "--crop", CROP, "--input-size", SIZE, "--calibration", method,
               "--steps", str(steps), "--out", str(out)]
    if weight is not None:
        command += ["--stability-weight", str(weight)]
    if calibrate_cli.main(command) != 0:
        raise SystemExit(f"{clip} {method} {weight}: evals.calibrate failed")


def measure(clip: str, weights: Path, start: int, frames: int, hysteresis: float) -> dict:
    command = ["--backend", "spikingjelly", "--task", "stream", "--model", "mobilenetv2", "--weights",
               str(weights), "--video", str(sample_video("bikes")), "--start", str(start), "--frames",
               str(frames), "--crop", CROP, "--input-size", SIZE, "--schedule", "layerwise", "--spikes",
               "graded", "--no-compare", "--hysteresis", str(hysteresis)]
    with tempfile.TemporaryDirectory() as tmp:
        if run_cli.main([*command, "--out", tmp]) != 0:
            raise SystemExit(f"{clip} {weights} {hysteresis}: evals.run failed")
        report = json.loads((Path(tmp) / "report.json").read_text())
    steady = report["frames"][1:]
    return {"hysteresis": hysteresis,
            "ops_over_ann_macs_steady": statistics.fmean((f["sops"] + f["input_macs"]) / f["ann_macs"]
                                                         for f in steady),
            "qann_cosine_to_ann": report["summary"]["qann_cosine_to_ann"],
            "level_mismatch_max": report["summary"]["level_mismatch_max"]}


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, len(CLIPS), figsize=(6 * len(CLIPS), 4.5), squeeze=False)
    for ax, clip in zip(axes[0], CLIPS, strict=True):
        for h, marker in zip(HYSTERESES, "os", strict=True):
            for r in (r for r in rows if r["clip"] == clip and r["hysteresis"] == h):
                label = r["method"] if r["stability_weight"] is None else f"stable {r['stability_weight']:g}"
                ax.scatter(r["ops_over_ann_macs_steady"], r["qann_cosine_to_ann"], marker=marker)
                ax.annotate(f"{label}, h={h:g}", (r["ops_over_ann_macs_steady"], r["qann_cosine_to_ann"]),
                            fontsize=7)
        ax.set(title=clip, xlabel="graded layer-wise ops per ANN MAC (held-out, steady)",
               ylabel="QANN cosine to float (held-out)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120), binary=True)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibration-frames", type=int, default=8)
    p.add_argument("--held-out", type=int, default=8, help="frames measured after the calibration ones")
    p.add_argument("--steps", type=int, default=400, help="distill / stable steps")
    p.add_argument("--weights", type=float, nargs="+", default=[0.3, 1.0], help="stable penalty weights")
    p.add_argument("--clips", nargs="+", choices=tuple(CLIPS), default=list(CLIPS))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/stability"))
    args = p.parse_args(argv)
    cases = [("perchannel", None), ("distill", None), *(("stable", w) for w in args.weights)]
    rows: list[dict] = []
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            for method, weight in cases:
                file = Path(tmp) / f"{clip}_{method}_{weight}.h5"
                calibrate(clip, method, weight, args.calibration_frames, args.steps, file)
                for h in HYSTERESES:
                    row = {"clip": clip, "method": method, "stability_weight": weight,
                           **measure(clip, file, CLIPS[clip] + args.calibration_frames, args.held_out, h)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                    write_atomic(args.out / "stability.json", lambda f: f.write(json.dumps({
                        "model": "mobilenetv2", "act_bits": 4, "input_size": SIZE, "crop": CROP,
                        "calibration_frames": args.calibration_frames, "held_out_frames": args.held_out,
                        "steps": args.steps,
                        "clips": {c: f"bikes.mp4 from frame {s}" for c, s in CLIPS.items()},
                        "rows": rows}, indent=2)))
                    plot(rows, args.out / "stability.png")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
