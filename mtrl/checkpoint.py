"""Agent checkpoints with orbax: array pytrees only, restored into a template (no pickled objects).

A checkpoint holds the agent state; its static parts (config, sizes) are not stored but rebuilt from the run's
`config.json` by calling the agent's `init`, which gives the template that orbax restores into.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp

from mtrl.types import PyTree


class Checkpointer:
    """Saves agent states under `run_dir/checkpoints/<total env steps>`, keeping the newest few."""

    def __init__(self, run_dir: Path, max_to_keep: int = 3):
        self._manager = ocp.CheckpointManager(
            Path(run_dir).absolute() / "checkpoints",
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def save(self, step: int, state: PyTree) -> None:
        self._manager.save(int(step), args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


def latest_step(run_dir: Path) -> int:
    """The newest checkpoint's step; a clear error if the run has none."""
    directory = Path(run_dir).absolute() / "checkpoints"
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(create=False))
    step = manager.latest_step() if directory.exists() else None
    manager.close()
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    return step


def restore(run_dir: Path, template: PyTree, step: int | None = None) -> PyTree:
    """Restore the checkpoint at `step` (default: newest) into the structure of `template`."""
    step = latest_step(run_dir) if step is None else step
    directory = Path(run_dir).absolute() / "checkpoints"
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(create=False))
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    manager.close()
    return state
