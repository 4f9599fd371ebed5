"""One module per Meta-World task, named after it ("pick-place-v3" -> `pick_place.py`), each with a `PORT`.

Every module is a port of that task's metaworld env class: which MuJoCo arrays and per-episode
attributes it needs, and its `_get_pos_objects`/`_get_quat_objects`/`evaluate_state` math in
`jax.numpy`. The parity tests hold each port to metaworld, step for step.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..port import TaskPort


def module_name(task: str) -> str:
    """'pick-place-v3' -> 'pick_place'."""
    return task.removesuffix("-v3").replace("-", "_")


def ported_tasks() -> tuple[str, ...]:
    """Task names that have a port, sorted."""
    names = (info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
    return tuple(sorted(name.replace("_", "-") + "-v3" for name in names))


def get_port(task: str) -> TaskPort:
    """The port of `task`; a one-line error naming the ported tasks if there is none."""
    if task not in ported_tasks():
        raise ValueError(f"task {task!r} has no native port; ported tasks: {', '.join(ported_tasks())}")
    return importlib.import_module(f"{__name__}.{module_name(task)}").PORT
