"""Lava CPU emulation cost: milliseconds per time step of our ST-BIF process vs Lava's stock LIF.

Both run behind the same source and Dense (or Conv) connection, same shape, same input, same tag;
results go to ``bench_results/lava.json``.  Median over repeats; the machines are noisy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backends.lava.timing import compare_neurons


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench_lava", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_results"))
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    cases = [((1024,), False), ((16, 16, 16), True)]
    results = [compare_neurons(shape, conv, args.steps, args.repeats, tag)
               for shape, conv in cases for tag in ("floating_pt", "fixed_pt")]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lava.json").write_text(json.dumps(results, indent=2))
    for r in results:
        print(f"{r['layer']:>8} {str(r['shape']):>14} {r['tag']:>11}  "
              f"LIF {r['lif_ms_per_step']:.3f} ms/step  ST-BIF {r['stbif_ms_per_step']:.3f} ms/step  "
              f"ratio {r['stbif_over_lif']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
