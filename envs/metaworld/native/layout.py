"""Where each value sits in the one float32 array the native host returns per vector step.

Row i belongs to env i. Columns: the common reads (`port.COMMON_READS`, in the same columns for every
task) and then the task's own reads from 0, the host's own columns (the mocap position it reads back,
and the unstable flag at `unstable_column`), the reset observation (39) at `obs_start`, and the task's
constants (common ones first) at `consts_start`. Tasks have different read and constant widths, so
each region is as wide as the widest task; unused columns are zero.
"""

from __future__ import annotations

import dataclasses
import functools

from ..benchmarks import OBS_SIZE
from .port import COMMON_CONSTANTS, COMMON_READS, TaskPort

MOCAP_COLUMNS = 3  # after each env's reads: its mocap position, read back by the host (not used in JAX)
HOST_COLUMNS = MOCAP_COLUMNS + 1  # then whether MuJoCo reset an unstable simulation during the step


def _offsets(widths: dict[str, int]) -> dict[str, tuple[int, int]]:
    offsets, start = {}, 0
    for name, width in widths.items():
        offsets[name] = (start, start + width)
        start += width
    return offsets


@dataclasses.dataclass(frozen=True)
class TaskLayout:
    """Column ranges of one task's reads and constants (relative to their regions)."""

    reads: dict[str, tuple[int, int]]
    constants: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, port: TaskPort) -> TaskLayout:
        if overridden := sorted(set(port.reads) & set(COMMON_READS)):
            raise ValueError(f"task reads {overridden} shadow common reads; rename them")
        # common reads first, in the same columns for every task: the observation is built for the
        # whole batch at once from them (`NativeEnv._evaluate`)
        reads = {**COMMON_READS, **port.reads}
        constants = {**COMMON_CONSTANTS, **port.constants}
        widths = {name: const.size for name, const in constants.items()} | dict(port.latched)
        return cls(_offsets({name: read.width for name, read in reads.items()}), _offsets(widths))

    @property
    def reads_width(self) -> int:
        return max(stop for _, stop in self.reads.values())

    @property
    def consts_width(self) -> int:
        return max(stop for _, stop in self.constants.values())


@dataclasses.dataclass(frozen=True)
class ReplyLayout:
    """The whole reply: per-task layouts and the three regions' starts."""

    tasks: tuple[TaskLayout, ...]

    @functools.cached_property
    def reads_width(self) -> int:
        return max(task.reads_width for task in self.tasks)

    @functools.cached_property
    def common_reads(self) -> dict[str, tuple[int, int]]:
        """Columns of `COMMON_READS`: the same in every task's layout (`TaskLayout.of` puts them first)."""
        return {name: self.tasks[0].reads[name] for name in COMMON_READS}

    @functools.cached_property
    def common_constants(self) -> dict[str, tuple[int, int]]:
        """Columns of `COMMON_CONSTANTS` within the constants region, the same for every task."""
        return {name: self.tasks[0].constants[name] for name in COMMON_CONSTANTS}

    @functools.cached_property
    def unstable_column(self) -> int:
        """The unstable flag's column: after the widest task's reads (the host writes it per row there)."""
        return self.reads_width + MOCAP_COLUMNS

    @functools.cached_property
    def obs_start(self) -> int:
        return self.reads_width + HOST_COLUMNS

    @functools.cached_property
    def consts_start(self) -> int:
        return self.obs_start + OBS_SIZE

    @functools.cached_property
    def consts_width(self) -> int:
        return max(task.consts_width for task in self.tasks)

    @functools.cached_property
    def width(self) -> int:
        return self.consts_start + self.consts_width
