"""`python -m evals.export`: write a converted network for other tools.

``--format graph``: the spiking graph (IR) as this project's HDF5 file (``vistream_neuro.ir_io``);
``netx``: its sigma-delta baseline as a lava-dl netx network (sequential graphs only: netx has no
add or pooling layers); ``nir``: NIR has no node for the ST-BIF (or sigma-delta) neuron, so this
names the nodes it cannot express and writes nothing.  The network is a built-in model converted
on the first frames of the built-in synthetic video (``--model``) or a graph file (``--graph``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from evals.cli.arguments import ArgParser, UsageError, act_bits, output_file, parse_size
from evals.data.synthetic import synthetic_video
from vistream_neuro import ir, models
from vistream_neuro.ir_io import load_graph, save_graph
from vistream_neuro.models import CheckpointError
from vistream_neuro.netx_export import export_netx
from vistream_neuro.nir_export import export_nir
from vistream_neuro.pipeline import CALIBRATION_FRAMES, convert_model, normalise, pixel_unit
from vistream_neuro.sigma_delta import to_sigma_delta

FORMATS = ("graph", "netx", "nir")


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="python -m evals.export", description=__doc__.splitlines()[0])
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", type=Path, required=True, help="file to write (HDF5 for graph and netx)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help=f"convert a built-in model: {', '.join(models.MODELS)}")
    source.add_argument("--graph", type=Path, help="a spiking-graph file written by --format graph")
    p.add_argument("--weights", type=Path, help="checkpoint (state dict) for --model")
    p.add_argument("--input-size", type=parse_size, help="network input HxW (default per model)")
    p.add_argument("--act-bits", type=act_bits, default=4, help="activation bits, 2 to 16 (default 4)")
    p.add_argument("--sigma-delta", type=float, default=1.0, metavar="FACTOR",
                   help="netx: sigma-delta threshold = FACTOR x the layer's scale (default 1)")
    p.add_argument("--input-unit", type=float,
                   help="netx: the value of one integer input step (default: one 8-bit pixel step in "
                        "the model's normalised units; 1/255 for --graph)")
    p.add_argument("--seed", type=int, default=0)
    return p


def source_graph(args: argparse.Namespace) -> ir.SpikingGraph:
    if args.graph is not None:
        return load_graph(args.graph)
    if args.model not in models.MODELS:
        raise UsageError(f"--model {args.model}: valid models are {', '.join(models.MODELS)}")
    h, w = args.input_size or models.DEFAULT_INPUT_SIZE[args.model]
    frames = torch.from_numpy(synthetic_video(CALIBRATION_FRAMES, h, w, seed=args.seed)).double()
    return convert_model(args.model, normalise(frames, args.model), args.act_bits, args.seed,
                         args.weights).graph


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if not args.out.parent.is_dir():
            raise UsageError(f"--out {args.out}: folder {args.out.parent} does not exist")
        output_file(args.out)
        graph = source_graph(args)
        if args.format == "graph":
            save_graph(graph, args.out)
        elif args.format == "netx":
            unit = args.input_unit or (pixel_unit(args.model) if args.model else 1 / 255)
            export_netx(to_sigma_delta(graph, args.sigma_delta), args.out, unit,
                        threshold_factor=args.sigma_delta)
        else:
            export_nir(graph, args.out)
    except (UsageError, ir.GraphError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"evals.export: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.format}: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
