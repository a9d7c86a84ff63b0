"""Events against accuracy for levels with hysteresis: the graded layer-wise LoCC stream of
MobileNetV2 (real weights, integer graph, 4 bits) for hysteresis 0, 0.1 and 0.25 steps, with both
calibrations, on bikes.mp4 (a moving-camera shot from frame 100, a static one from frame 160) and
the synthetic sequence.  Each case is one ``evals.run --schedule layerwise --spikes graded`` run;
steady ops are the SOPs plus the input layer's MACs of every frame after the first, per ANN MAC.
Writes ``benchmarks/results/hysteresis.json``.

    python benchmarks/hysteresis.py [--frames 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from tqdm import tqdm

from evals import run as run_cli
from evals.data.sample_videos import sample_video

SOURCES = {  # name -> evals.run arguments
    "bikes_moving_camera": ["--video", "bikes", "--start", "100"],
    "bikes_static_camera": ["--video", "bikes", "--start", "160"],
    "synthetic": [],
}
CALIBRATIONS = ("percentile", "perchannel")
HYSTERESES = (0.0, 0.1, 0.25)


def measure(source: str, calibration: str, hysteresis: float, frames: int, size: str) -> dict:
    extra = [str(sample_video("bikes")) if a == "bikes" else a for a in SOURCES[source]]
    command = ["--backend", "spikingjelly", "--task", "stream", "--model", "mobilenetv2",
               "--schedule", "layerwise", "--spikes", "graded", "--no-compare", "--frames", str(frames),
               "--input-size", size, "--calibration", calibration, "--hysteresis", str(hysteresis), *extra]
    with tempfile.TemporaryDirectory() as tmp:
        if run_cli.main([*command, "--out", tmp]) != 0:
            raise SystemExit(f"{source} {calibration} {hysteresis}: evals.run failed")
        report = json.loads((Path(tmp) / "report.json").read_text())
    steady = report["frames"][1:]
    summary = report["summary"]
    return {"source": source, "input_size": size, "calibration": calibration, "hysteresis": hysteresis,
            "ops_over_ann_macs_steady": statistics.fmean((f["sops"] + f["input_macs"]) / f["ann_macs"]
                                                         for f in steady),
            "qann_cosine_to_ann": summary["qann_cosine_to_ann"],
            "level_mismatch_max": summary["level_mismatch_max"],
            "command": "python -m evals.run " + " ".join(
                a.replace(str(sample_video("bikes")), "bikes.mp4") for a in command)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", default="128x64")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/hysteresis.json"))
    args = p.parse_args(argv)
    cases = [(s, c, h) for s in SOURCES for c in CALIBRATIONS for h in HYSTERESES]
    rows = [measure(*case, args.frames, args.size) for case in tqdm(cases, desc="hysteresis")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"model": "mobilenetv2", "act_bits": 4, "frames": args.frames, "rows": rows},
                              indent=2))
    tmp.replace(args.out)
    for r in rows:
        print(f"{r['source']:>20} {r['calibration']:>10} h={r['hysteresis']:<4} graded ops/ANN MAC "
              f"{r['ops_over_ann_macs_steady']:.3f}  cosine to ANN {r['qann_cosine_to_ann']:.3f}  "
              f"mismatch {r['level_mismatch_max']}")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
