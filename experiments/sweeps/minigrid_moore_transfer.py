"""The MOORE paper's MiniGrid transfer figure as a sweep: {MOORE, MoE} × {TL3→5, TL5→7} × {transfer, noinit}.

    mtrl sweep experiments/sweeps/minigrid_moore.py --jobs 1            # first: the source runs (MT3, MT5)
    mtrl sweep experiments/sweeps/minigrid_moore_transfer.py --dry-run  # the 8 runs (30 vmapped seeds each)
    mtrl sweep experiments/sweeps/minigrid_moore_transfer.py --jobs 1
    mtrl report runs/sweeps/minigrid-moore-transfer --metric return --protocol eval_moore

As the authors chain run/minigrid/transfer/*.sh: a transfer run starts from the expert CNNs of the finished
multi-task run of the same method (MT3 for TL3→5, MT5 for TL5→7), seed s from seed s, keeps them frozen and
trains fresh task weights and heads on the tasks the setting adds; its "noinit" control trains the same
networks from scratch (presets `minigrid-tl3-5-<method>[-noinit]`, docs/fidelity.md). The source runs are the
ones `minigrid_moore.py` writes, so set the same `MTRL_MINIGRID_SEEDS` for both sweeps; a transfer run whose
source is missing or unfinished stops with a one-line error naming it, and the noinit runs go on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mtrl.app.sweep_grid import Sweep, seeds_label

SEEDS = int(os.environ.get("MTRL_MINIGRID_SEEDS", "30"))
SOURCES = Path("runs/sweeps/minigrid-moore")  # minigrid_moore.py's directory
SOURCE_SET = {"tl3-5": "mt3", "tl5-7": "mt5"}


def source_run(method: str, setting: str) -> str:
    """The run directory `minigrid_moore.py` gives `method` on the setting's source task set."""
    return str(SOURCES / f"{method}-{SOURCE_SET[setting]}-{seeds_label(range(SEEDS))}")


SWEEP = Sweep(
    name="minigrid-moore-transfer",
    base="minigrid-tl3-5-moore-noinit",
    variants={
        **{
            f"{method}-{setting}": {
                "preset": f"minigrid-{setting}-{method}",
                "agent.experts_from": source_run(method, setting),
            }
            for setting in SOURCE_SET
            for method in ("moore", "moe")
        },
        **{
            f"{method}-{setting}-noinit": {"preset": f"minigrid-{setting}-{method}-noinit"}
            for setting in SOURCE_SET
            for method in ("moore", "moe")
        },
    },
    seeds=range(SEEDS),
)

if __name__ == "__main__":
    from mtrl.app.sweep import main

    sys.exit(main([__file__, *sys.argv[1:]]))
