"""MiniGrid, the MOORE paper's second benchmark: seven Farama tasks ported to JAX, and Farama's own envs.

Benchmarks (the task lists and their order are the MOORE authors' `MT_EXP`, run_minigrid_ppo_mt.py; the
order fixes the task ids, hence the one-hot and the heads):

- MiniGrid-MT3: LavaGapS7, RedBlueDoors-6x6, MemoryS11
- MiniGrid-MT5: DoorKey-6x6, LavaGapS7, RedBlueDoors-6x6, DistShift1, MemoryS11
- MiniGrid-MT7: DoorKey-6x6, DistShift1, RedBlueDoors-6x6, LavaGapS7, MemoryS11, SimpleCrossingS9N2,
  MultiRoom-N2-S4
- MiniGrid-TL3-5, MiniGrid-TL5-7: the transfer targets, only the tasks MT5 adds to MT3 (DoorKey-6x6,
  DistShift1) and MT7 to MT5 (SimpleCrossingS9N2, MultiRoom-N2-S4) (`MT_EXP` of run_minigrid_ppo_tl.py)
- MiniGrid-MT1: one of the seven, chosen with `task=` (e.g. "LavaGapS7").

Backends: "jax" (the port, `env.MiniGrid`) and "farama" (Farama minigrid's envs stepped on the host through
`io_callback`, the reference the port is parity-tested against).
"""

from __future__ import annotations

import importlib

from .layout import Task

TASK_MODULES = {
    "DoorKey-6x6": "doorkey",
    "DistShift1": "distshift",
    "RedBlueDoors-6x6": "redbluedoors",
    "LavaGapS7": "lavagap",
    "MemoryS11": "memory",
    "SimpleCrossingS9N2": "crossing",
    "MultiRoom-N2-S4": "multiroom",
}
"""Short task name → module of `envs.minigrid.tasks` holding its `TASK`."""

BENCHMARKS = {
    "MiniGrid-MT3": ("LavaGapS7", "RedBlueDoors-6x6", "MemoryS11"),
    "MiniGrid-MT5": ("DoorKey-6x6", "LavaGapS7", "RedBlueDoors-6x6", "DistShift1", "MemoryS11"),
    "MiniGrid-MT7": (
        "DoorKey-6x6",
        "DistShift1",
        "RedBlueDoors-6x6",
        "LavaGapS7",
        "MemoryS11",
        "SimpleCrossingS9N2",
        "MultiRoom-N2-S4",
    ),
    "MiniGrid-TL3-5": ("DoorKey-6x6", "DistShift1"),
    "MiniGrid-TL5-7": ("SimpleCrossingS9N2", "MultiRoom-N2-S4"),
}
NAMES = (*BENCHMARKS, "MiniGrid-MT1")
BACKENDS = ("jax", "farama")


def get_task(short_name: str) -> Task:
    """The ported task `short_name` (a key of `TASK_MODULES`)."""
    if short_name not in TASK_MODULES:
        raise ValueError(f"unknown MiniGrid task {short_name!r}; valid: {', '.join(TASK_MODULES)}")
    return importlib.import_module(f"{__name__}.tasks.{TASK_MODULES[short_name]}").TASK


def task_names(name: str, task_name: str | None = None) -> tuple[str, ...]:
    """The short task names of benchmark `name` (MT1: `task_name`)."""
    if name not in NAMES:
        raise ValueError(f"unknown MiniGrid benchmark {name!r}; valid: {', '.join(NAMES)}")
    if name == "MiniGrid-MT1":
        if task_name not in TASK_MODULES:
            raise ValueError(f"MiniGrid-MT1 needs task= one of {', '.join(TASK_MODULES)}, got {task_name!r}")
        return (task_name,)
    if task_name is not None:
        raise ValueError(f"task={task_name!r} is only for MiniGrid-MT1; {name} has its own task list")
    return BENCHMARKS[name]


def make_minigrid(
    name: str, *, task: str | None = None, backend: str = "jax", envs_per_task: int = 1, seed: int = 0
):
    """Build benchmark `name` on `backend` ("jax" or "farama")."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} for {name}; valid backends: {', '.join(BACKENDS)}")
    tasks = tuple(get_task(short) for short in task_names(name, task))
    if backend == "farama":
        from .reference import FaramaMiniGrid  # imports minigrid only when asked for

        return FaramaMiniGrid(name, tasks, envs_per_task=envs_per_task, seed=seed)
    from .env import MiniGrid

    return MiniGrid(name, tasks, envs_per_task=envs_per_task)
