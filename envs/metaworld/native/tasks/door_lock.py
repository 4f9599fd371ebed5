"""door-lock-v3 (`SawyerDoorLockEnvV3`): push the lock lever down; success when the lock site's height
is within 2 cm of the goal's."""

import jax.numpy as jnp

from ..port import TaskPort
from ..rewards import hamacher_product, norm, tolerance
from ._doors_and_windows import LOCK_LENGTH, lock_objects, lock_reads

SCALE = jnp.array([0.25, 1.0, 0.5])


def reward(frame, consts, obs, action):
    lock = obs[:, 4:7]
    # metaworld measures from the left pad; its "initial" left pad is a view of the current one, so
    # the near-lock margin is the current distance itself.
    tcp_to_obj = norm((lock - frame.left_pad) * SCALE)
    near_lock = tolerance(tcp_to_obj, bounds=(0, 0.01), margin=tcp_to_obj, sigmoid="long_tail")
    obj_to_target = jnp.abs(consts.target_pos[:, 2] - lock[:, 2])
    lock_pressed = tolerance(obj_to_target, bounds=(0, 0.005), margin=LOCK_LENGTH, sigmoid="long_tail")
    tcp_opened = jnp.maximum(obs[:, 3], 0.0)
    reward = 2 * hamacher_product(tcp_opened, near_lock) + 8 * lock_pressed
    return reward, obj_to_target <= 0.02


PORT = TaskPort(reads=lock_reads("lockStartLock"), constants={}, objects=lock_objects, reward=reward)
