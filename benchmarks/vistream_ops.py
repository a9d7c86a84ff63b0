"""Our accounting next to ViStream's convention (vistream_neuro/vistream_ops.py) on a real video:
MobileNetV2 (ImageNet weights) and ViStream's ResNet-50 backbone (seeded), both at ViStream's
level 16, LoCC in its timestep schedule, on the integer graph (default) and the float graph with
one scale per layer (as ViStream's), under ViStream's quiescence rule (its step counts and ours
come from the same run).  Each case is one ``evals.run`` command; writes
``benchmarks/results/vistream_ops.json``.

    python benchmarks/vistream_ops.py [--frames 6]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from evals import run as run_cli
from evals.data.sample_videos import sample_video
from vistream_neuro.atomic import write_atomic

MODELS = ("mobilenetv2", "vistream-resnet50")
PRECISIONS = ("fixed", "float64")


def measure(model: str, precision: str, frames: int, size: str, start: int) -> dict:
    command = ["--backend", "spikingjelly", "--task", "stream", "--model", model, "--level", "16",
               "--precision", precision, "--quiescence", "vistream", "--frames", str(frames),
               "--input-size", size, "--video", str(sample_video("bikes")), "--start", str(start),
               "--crop", "256,8,128,256", "--seed", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        if run_cli.main([*command, "--out", tmp]) != 0:
            raise SystemExit(f"{model} {precision}: evals.run failed")
        s = json.loads((Path(tmp) / "report.json").read_text())["summary"]
    ours = s["sops_per_frame"] + s["input_macs_per_frame"]
    return {"model": model, "precision": precision, "input_size": size, "frames": frames,
            "ours": {"sops": s["sops_per_frame"], "input_macs": s["input_macs_per_frame"], "total": ours,
                     "energy_pj_45nm_fp32": s["energy_pj_per_frame"]["45nm_fp32"],
                     "neuron_updates_dense": s["neuron_updates_dense_per_frame"]},
            "vistream": {**s["vistream_ops_per_frame"], "energy_pj": s["vistream_energy_pj_per_frame"],
                         "layers_as_macs": s["vistream_layers_as_macs"]},
            "ann_macs_per_frame": s["ann_macs_per_frame"],
            "timesteps_mean_by_rule": s["timesteps_mean_by_rule"],
            "level_mismatch_max": s["level_mismatch_max"],
            "command": "python -m evals.run " + " ".join(command).replace(str(sample_video("bikes")),
                                                                          "bikes.mp4")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--size", default="128x64")
    p.add_argument("--start", type=int, default=100)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/vistream_ops.json"))
    args = p.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        for precision in PRECISIONS:
            rows.append(measure(model, precision, args.frames, args.size, args.start))
            print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda f: json.dump({"rows": rows}, f, indent=2))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
