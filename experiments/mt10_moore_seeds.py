"""Reproduce the MOORE MT10 recipe over several seeds, one run directory each.

    python experiments/mt10_moore_seeds.py --seeds 0 1 2          # the paper budget: a GPU-scale job
    python experiments/mt10_moore_seeds.py --seeds 0 --quick      # the quickstart budget, minutes on a CPU

Each seed is its own `mtrl.train(config)` call: Meta-World steps on the host (both backends), so seeds
cannot share one vmapped program (the toy env can: `mtrl train --env.name toy --num-seeds N`).
"""

from __future__ import annotations

import argparse
import dataclasses

import mtrl
from mtrl.app.presets import get_preset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true", help="use the quickstart budget")
    args = parser.parse_args(argv)
    base = get_preset("quickstart" if args.quick else "mt10-moore")
    for seed in args.seeds:
        result = mtrl.train(dataclasses.replace(base, seed=seed))
        print(f"seed {seed}: mean success {result.mean_success:.3f} ({result.run_dir})")


if __name__ == "__main__":
    main()
