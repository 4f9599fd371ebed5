"""The native host's batch machinery on small MuJoCo models: the flat view and the physics pool."""

from __future__ import annotations

import copy
import gc
import threading
import time

import mujoco
import numpy as np
import pytest
from mtrl.envs.metaworld import snapshot
from mtrl.envs.metaworld.native.physics import BatchView, PhysicsPool, step_physics

XML = """
<mujoco>
  <worldbody>
    <body name="ball" pos="0 0 1"><freejoint/><geom size=".1"/></body>
    <body name="arm" mocap="true" pos="0.3 0 0.5"><site name="tip" size="0.01"/></body>
    <body name="slider" pos="0 0.5 0"><joint name="slide" type="slide"/><geom size=".05"/></body>
  </worldbody>
  <actuator><motor joint="slide"/><motor joint="slide"/></actuator>
</mujoco>
"""
FIELDS = ("qpos", "qvel", "ctrl", "mocap_pos", "mocap_quat", "xpos", "site_xpos")


@pytest.fixture
def batch():
    model = mujoco.MjModel.from_xml_string(XML)
    datas = [mujoco.MjData(model) for _ in range(5)]
    for k, data in enumerate(datas):
        data.qpos[:3] = [0.1 * k, -0.2 * k, 1 + k]
        mujoco.mj_forward(model, data)
    return model, datas


def test_view_reads_and_writes_what_mujoco_holds(batch):
    model, datas = batch
    view = BatchView(datas, FIELDS, snapshot.UNSTABLE)
    for env, data in enumerate(datas):
        for name in FIELDS:
            field = getattr(data, name).ravel()
            np.testing.assert_array_equal(view.values[view.index(env, name, np.arange(field.size))], field)
    index = np.stack([view.index(env, "mocap_pos", range(3)) for env in range(len(datas))])
    new = np.arange(15, dtype=float).reshape(5, 3)
    view.values[index] = new  # one assignment lands in every env's MjData
    np.testing.assert_array_equal(np.stack([data.mocap_pos[0] for data in datas]), new)
    assert view.values[view.zero_index] == 0.0


def test_view_counts_each_envs_instabilities(batch):
    model, datas = batch
    view = BatchView(datas, FIELDS, snapshot.UNSTABLE)
    np.testing.assert_array_equal(view.unstable_counts(), 0)
    datas[3].qvel[:] = 1e300  # MuJoCo resets this one env and counts a warning; the others step on
    for data in datas:
        step_physics(model, data, 2)
    expected = [snapshot.unstable_resets(data) for data in datas]
    np.testing.assert_array_equal(view.unstable_counts(), expected)
    assert expected[3] > 0 and sum(expected) == expected[3]


def test_pool_does_every_item_once_and_matches_a_plain_loop(batch):
    model, datas = batch
    reference = [copy.deepcopy(data) for data in datas]
    calls, threads = [], set()

    def work(i):
        calls.append(i)
        threads.add(threading.get_ident())
        step_physics(model, datas[i], 5)

    pool = PhysicsPool(work, len(datas), threads=3)
    for _ in range(20):
        pool.run()
        for ref in reference:
            step_physics(model, ref, 5)
    pool.close()
    assert sorted(calls) == sorted(list(range(len(datas))) * 20)
    for ref, data in zip(reference, datas, strict=True):
        np.testing.assert_array_equal(data.qpos, ref.qpos)  # bit-identical whichever thread stepped it
        np.testing.assert_array_equal(data.qvel, ref.qvel)


@pytest.mark.parametrize("failing", [("caller",), ("worker",), ("caller", "worker")])
def test_pool_reraises_an_error_and_stays_usable(failing):
    calls, failed = [], set()
    caller = threading.get_ident()

    def work(i):
        time.sleep(0.001)  # releases the GIL: both threads take items
        thread = "caller" if threading.get_ident() == caller else "worker"
        if thread in failing and thread not in failed:  # each chosen thread fails once
            failed.add(thread)
            raise ValueError(f"item {i} failed")
        calls.append(i)

    pool = PhysicsPool(work, 50, threads=2)
    with pytest.raises(ValueError, match="failed"):
        pool.run()
    assert failed == set(failing)
    calls.clear()
    pool.run()  # every thread had finished the failed call and no stale error is left: each item once
    assert sorted(calls) == list(range(50))
    pool.close()


def test_pool_refuses_to_run_after_close():
    pool = PhysicsPool(lambda i: None, 4, threads=2)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.run()


def test_an_unclosed_pool_is_freed_and_its_workers_exit():
    pool = PhysicsPool(lambda i: None, 4, threads=3)
    pool.run()
    workers = list(pool._workers)
    assert all(worker.is_alive() for worker in workers)
    del pool
    gc.collect()
    for worker in workers:
        worker.join(timeout=5)
    assert not any(worker.is_alive() for worker in workers)
