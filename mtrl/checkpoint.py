"""Run checkpoints with orbax: everything a run needs to continue exactly, written atomically.

A checkpoint `run_dir/checkpoints/<total env steps>/` holds four items:
- `agent`: the agent state (all a trained policy needs; `restore` reads only this item);
- `train`: the rest of the train state (env state, last time step, replay, episode stats, PRNG key);
- `host`: the state of host-stepped envs (MuJoCo state and env attributes), absent for pure-JAX envs;
- `loop`: JSON: the loop position and where the run's metric log stood.

Only arrays and JSON are stored, restored into templates: nothing is unpickled. Orbax writes each
checkpoint into a temporary directory and renames it when complete, so a crash (or a full disk) during a
write leaves the previous checkpoint as the newest readable one.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp

from mtrl import devices
from mtrl.types import PyTree


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message says what is still usable."""


class Restored(NamedTuple):
    step: int
    train_state: PyTree
    host: dict[str, Any] | None
    loop: dict[str, Any]


def _directory(run_dir: Path) -> Path:
    return Path(run_dir).absolute() / "checkpoints"


def _manager(run_dir: Path, *, create: bool, max_to_keep: int | None = None) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=create, cleanup_tmp_directories=create
    )
    return ocp.CheckpointManager(_directory(run_dir), options=options)


def _abstract(template: PyTree) -> PyTree:
    """The restore target: shapes and dtypes of `template`, on the first device (see `devices`)."""
    return devices.on_first_device(jax.tree.map(ocp.utils.to_shape_dtype_struct, template))


class Checkpointer:
    """Writes run checkpoints, keeping the newest `max_to_keep`."""

    def __init__(self, run_dir: Path, max_to_keep: int = 2):
        self._manager = _manager(run_dir, create=True, max_to_keep=max_to_keep)

    def save(
        self,
        step: int,
        train_state: PyTree,
        *,
        loop: dict[str, Any] | None = None,
        host: dict[str, Any] | None = None,
    ) -> None:
        """Write `train_state` (whose `.agent` is stored apart), `loop` (JSON) and `host` at `step`."""
        items = {
            "agent": ocp.args.StandardSave(train_state.agent),
            "train": ocp.args.StandardSave(train_state.replace(agent=None)),
            "loop": ocp.args.JsonSave(loop or {}),
        }
        if host is not None:
            items["host"] = ocp.args.StandardSave(host)
        previous = self._manager.latest_step()
        try:
            self._manager.save(int(step), args=ocp.args.Composite(**items), force=True)
            self._manager.wait_until_finished()
        except Exception as error:  # noqa: BLE001 — disk full, permissions, ...: all end the same way
            kept = (
                f"the previous checkpoint (step {previous}) is intact"
                if previous
                else "no earlier checkpoint"
            )
            raise CheckpointError(
                f"could not write the checkpoint at step {step} ({error}); {kept}"
            ) from error

    def close(self) -> None:
        self._manager.close()


def steps(run_dir: Path) -> list[int]:
    """Steps of the complete checkpoints of a run, oldest first (half-written ones are not listed)."""
    if not _directory(run_dir).exists():
        return []
    manager = _manager(run_dir, create=False)
    found = list(manager.all_steps())
    manager.close()
    return sorted(found)


def latest_step(run_dir: Path) -> int:
    """The newest checkpoint's step; a clear error if the run has none."""
    found = steps(run_dir)
    if not found:
        raise FileNotFoundError(f"no checkpoint in {_directory(run_dir)}")
    return found[-1]


def restore(run_dir: Path, template: PyTree, step: int | None = None) -> PyTree:
    """The agent state of the checkpoint at `step` (default: newest), in the structure of `template`."""
    step = latest_step(run_dir) if step is None else step
    manager = _manager(run_dir, create=False)
    try:
        args = ocp.args.Composite(agent=ocp.args.StandardRestore(_abstract(template)))
        return manager.restore(step, args=args)["agent"]
    finally:
        manager.close()


_late_callbacks_silenced = False


def _silence_late_read_callbacks() -> None:
    """Drop the stray errors that a failed restore leaves behind.

    When one array of a checkpoint fails to read, orbax closes its event loop while tensorstore still
    finishes the other reads; each of those then reports `RuntimeError('Event loop is closed')` from a
    tensorstore thread as an unraisable exception: one traceback per array on stderr, which says nothing
    the refusal does not. Exactly those are dropped; every other unraisable goes to the previous hook.
    """
    global _late_callbacks_silenced
    if _late_callbacks_silenced:
        return
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        error = unraisable.exc_value
        late = isinstance(error, RuntimeError) and str(error) == "Event loop is closed"
        if not (late and unraisable.object is None):
            previous(unraisable)

    sys.unraisablehook = hook
    _late_callbacks_silenced = True


def _set_aside(run_dir: Path, step: int) -> Path:
    """Move an unreadable checkpoint out of the way (kept, not deleted) so the step can be written again."""
    target = Path(run_dir).absolute() / "unreadable-checkpoints" / str(step)
    n = 1
    while target.exists():
        n += 1
        target = target.with_name(f"{step}-{n}")
    target.parent.mkdir(exist_ok=True)
    (_directory(run_dir) / str(step)).rename(target)
    return target


def restore_run(run_dir: Path, train_template: PyTree, *, host: bool) -> Restored:
    """The newest checkpoint that reads back whole; a corrupt one is reported and the one before it used.

    `train_template` gives the train state's structure (e.g. from `jax.eval_shape`); `host` says whether
    the env is host-stepped, whose state is then restored as saved (a dict of NumPy arrays).
    """
    found = steps(run_dir)
    if not found:
        raise FileNotFoundError(f"no checkpoint in {_directory(run_dir)}; nothing to resume")
    manager = _manager(run_dir, create=False)
    failures = []
    try:
        for step in reversed(found):
            items = {
                "agent": ocp.args.StandardRestore(_abstract(train_template.agent)),
                "train": ocp.args.StandardRestore(_abstract(train_template.replace(agent=None))),
                "loop": ocp.args.JsonRestore(),
            }
            if host:
                items["host"] = ocp.args.StandardRestore()
            try:
                restored = manager.restore(step, args=ocp.args.Composite(**items))
            except Exception as error:  # noqa: BLE001 — truncated files, bad metadata, wrong shapes
                _silence_late_read_callbacks()
                failures.append(f"step {step}: {str(error).splitlines()[0][:200]}")
                moved = _set_aside(run_dir, step)
                warnings.warn(
                    f"checkpoint {step} of {run_dir} is unreadable (moved to {moved}); trying an older one",
                    stacklevel=2,
                )
                continue
            train_state = restored["train"].replace(agent=restored["agent"])
            host_state = restored["host"] if host else None
            return Restored(step, train_state, host_state, dict(restored["loop"]))
    finally:
        manager.close()
    raise CheckpointError(f"no readable checkpoint in {_directory(run_dir)}: " + "; ".join(failures))
