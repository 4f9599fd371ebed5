"""MOORE against MT-MH-SAC on MT10 at the paper budget, 10 seeds each: the sweep to run on a GPU machine.

    mtrl sweep experiments/sweeps/mt10_moore_vs_mhsac.py --dry-run     # the 20 runs, checked; starts nothing
    mtrl sweep experiments/sweeps/mt10_moore_vs_mhsac.py --jobs 4      # 4 runs at a time on this machine
    mtrl sweep experiments/sweeps/mt10_moore_vs_mhsac.py --wandb-yaml sweep.yaml  # or over many machines

Both methods use the MOORE paper's MT10 setup (Hendawy et al., ICLR 2024, arXiv:2311.11385): 2M steps per
task, batch 128 per task, replay 1e6 per task, 400×3 networks; MOORE with k = 4 experts. Meta-World steps on
the host, so every seed is its own run (`runs/sweeps/mt10-moore-vs-mhsac/<method>-s<seed>`); the native
backend is the fast one on CPU cores.
"""

from __future__ import annotations

import sys

from mtrl.app.sweep_grid import Sweep

SWEEP = Sweep(
    name="mt10-moore-vs-mhsac",
    base="mt10-moore",
    variants={
        "moore": {"preset": "mt10-moore", "env.backend": "native"},
        "mhsac": {"preset": "mt10-mhsac", "env.backend": "native"},
    },
    seeds=range(10),
)

if __name__ == "__main__":
    from mtrl.app.sweep import main

    sys.exit(main([__file__, *sys.argv[1:]]))
