"""Will it fit? Replay memory is checked before it is allocated, not discovered by an OOM kill hours in."""

from __future__ import annotations

import jax
import numpy as np

from mtrl import replay
from mtrl.types import EnvSpec

HEADROOM = (
    0.8  # replay may take this share of free memory; networks, XLA and checkpoint buffers need the rest
)


def replay_bytes(spec: EnvSpec, capacity_per_task: int, num_seeds: int = 1) -> int:
    """Bytes the replay buffers of a run take (all tasks, all seeds)."""
    shapes = jax.eval_shape(lambda: replay.init_replay(spec, capacity_per_task))
    return num_seeds * sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def available_bytes() -> int | None:
    """Free memory of the default device (an accelerator's own, else the host's); None if unknown."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        return None
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_replay_fits(
    spec: EnvSpec, capacity_per_task: int, num_seeds: int = 1, available: int | None = None
) -> None:
    """Refuse a replay capacity that would not fit in memory, saying the largest that would."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    needed = replay_bytes(spec, capacity_per_task, num_seeds)
    if needed > HEADROOM * available:
        per_row = needed / (num_seeds * spec.num_tasks * capacity_per_task)
        largest = int(HEADROOM * available / (per_row * num_seeds * spec.num_tasks))
        raise ValueError(
            f"replay of {capacity_per_task:,} per task needs {needed / 2**30:.1f} GiB "
            f"({spec.num_tasks} tasks × {num_seeds} seed(s) × {per_row:.0f} B per row) but only "
            f"{available / 2**30:.1f} GiB are free; "
            f"set --loop.replay-per-task to at most {largest:,}"
        )
