"""The physics of a whole batch of metaworld envs with as little Python per env as possible.

Two pieces, both because the per-env Python of a vector step holds the GIL while the other threads'
MuJoCo calls want it back:

- `BatchView`: one flat NumPy view over the MjData of every env, so a vector step's writes (mocap,
  controls) are one fancy assignment, its reads one `np.take` into a preallocated reply, and the
  instability counters of the whole batch one more `take`, whatever the tasks read.
- `PhysicsPool`: persistent worker threads that, with the caller, pull envs off a shared counter and
  run `mj_step(nstep)` + `mj_forward` on each (MuJoCo releases the GIL while it steps). One hand-off
  each way per vector step instead of a future per chunk.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
import weakref
from collections.abc import Callable, Sequence

import mujoco
import numpy as np


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _end(array: np.ndarray) -> int:
    """One past the last byte of `array` (strided arrays included)."""
    last = sum((n - 1) * stride for n, stride in zip(array.shape, array.strides, strict=True))
    return _address(array) + last + array.itemsize


def _span_view(arrays: Sequence[np.ndarray], ctype) -> tuple[np.ndarray, int]:
    """A 1-D view of C type `ctype` from the lowest to the highest byte of `arrays`, and its base.

    The span between separately allocated MjData is not ours to touch: only ever index the view at
    addresses that lie inside one of `arrays` (fancy indexing does; `np.put` would copy the whole span).
    """
    size = ctypes.sizeof(ctype)
    base = min(_address(a) for a in arrays)
    end = max(_end(a) for a in arrays)
    if any((_address(a) - base) % size for a in arrays):
        raise RuntimeError(f"MjData fields are not {size}-byte aligned relative to each other")
    pointer = ctypes.cast(base, ctypes.POINTER(ctype))
    return np.ctypeslib.as_array(pointer, shape=((end - base) // size,)), base


class BatchView:
    """Flat float64 indices into every env's MjData fields, and the batch's instability counters.

    `index(env, field, elements)` turns "elements of `data.field.ravel()` of env `env`" into positions
    in `values`. The view keeps each MjData alive (`self.datas`); MuJoCo never reallocates these fields
    (resets write into them), so the positions stay valid for the envs' life. A construction-time check
    compares every field as seen through the view with what the MuJoCo bindings return.
    """

    def __init__(self, datas: Sequence, fields: Sequence[str], unstable_warnings: Sequence[int]):
        self.datas = list(datas)
        self.zero = np.zeros(1)  # padding columns of the reply read this
        arrays = [getattr(data, name) for data in self.datas for name in fields]
        self.values, base = _span_view([*arrays, self.zero], ctypes.c_double)
        self._offsets = [
            {name: (_address(getattr(data, name)) - base) // 8 for name in fields} for data in self.datas
        ]
        self.zero_index = (_address(self.zero) - base) // 8
        counters = [data.warning.number for data in self.datas]
        self._counters, counter_base = _span_view(counters, ctypes.c_int32)
        self._counter_index = np.array(
            [(_address(c) - counter_base) // 4 + np.asarray(unstable_warnings) * 2 for c in counters]
        )  # mjWarningStat is {int lastinfo; int number}: `number` arrays have a stride of 2 ints
        warnings = np.asarray(unstable_warnings)
        for env, data in enumerate(self.datas):
            for name in fields:
                field = getattr(data, name).ravel()
                if not np.array_equal(self.values[self.index(env, name, np.arange(field.size))], field,
                                      equal_nan=True):  # fmt: skip
                    raise RuntimeError(f"the flat view of MjData.{name} does not read what MuJoCo holds")
            if not np.array_equal(self._counters[self._counter_index[env]], data.warning.number[warnings]):
                raise RuntimeError("the flat view of MjData.warning does not read what MuJoCo holds")

    def index(self, env: int, field: str, elements: np.ndarray) -> np.ndarray:
        return self._offsets[env][field] + np.asarray(elements, np.int64)

    def unstable_counts(self) -> np.ndarray:
        """Per env: how often MuJoCo has reset its simulation for instability (see `snapshot`)."""
        return self._counters[self._counter_index].sum(axis=1)


class PhysicsPool:
    """`work(i)` for every i in range(size), by the caller and `threads - 1` persistent workers.

    Which thread steps which env varies from call to call; each env's physics is its own, so the
    results do not. Exceptions in a worker are re-raised in the caller. Workers hold the pool only
    weakly while they wait, so a pool (and the envs its `work` reaches) that nobody closes is still
    freed, and its workers then exit.
    """

    def __init__(self, work: Callable[[int], None], size: int, threads: int):
        self._work, self._size = work, size
        self._go = [threading.Semaphore(0) for _ in range(threads - 1)]
        self._finished = threading.Semaphore(0)
        self._errors: list[BaseException] = []
        self._counter = itertools.count()
        self._closed = False
        self._workers = [
            threading.Thread(target=_serve, args=(weakref.ref(self), go, self._finished), daemon=True)
            for go in self._go
        ]
        for worker in self._workers:
            worker.start()
        self._wake_all = weakref.finalize(self, _release_all, self._go)

    def run(self) -> None:
        if self._closed:
            raise RuntimeError(
                "the native env's physics pool is closed: the env cannot be stepped after close()"
            )
        self._counter = itertools.count()
        for go in self._go:
            go.release()
        try:
            self._drain()
        except BaseException as error:  # noqa: BLE001  (re-raised below, as the workers' are)
            self._errors.insert(0, error)
        for _ in self._go:  # no worker may still be stepping when run() returns or raises
            self._finished.acquire()
        if self._errors:
            error, self._errors = self._errors[0], []
            raise error

    def close(self) -> None:
        self._closed = True
        self._wake_all()
        for worker in self._workers:
            worker.join()

    def _drain(self) -> None:
        counter, size, work = self._counter, self._size, self._work
        for i in counter:  # next() on itertools.count is atomic under the GIL
            if i >= size:
                return
            work(i)


def _serve(pool_ref: weakref.ref, go: threading.Semaphore, finished: threading.Semaphore) -> None:
    """A worker: wait for a vector step, help drain it, report; exit once the pool is closed or gone."""
    while True:
        go.acquire()
        pool = pool_ref()
        if pool is None or pool._closed:
            return
        try:
            pool._drain()
        except BaseException as error:  # noqa: BLE001  (handed to the caller)
            pool._errors.append(error)
        finally:
            del pool
            finished.release()


def _release_all(semaphores: list[threading.Semaphore]) -> None:
    for semaphore in semaphores:
        semaphore.release()


def step_physics(model, data, nstep: int) -> None:
    """What `SawyerXYZEnv.step` does to MuJoCo after setting the action: step, then forward."""
    mujoco.mj_step(model, data, nstep=nstep)
    mujoco.mj_forward(model, data)
