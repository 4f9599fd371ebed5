"""door-unlock-v3 (`SawyerDoorUnlockEnvV3`): push the lock lever sideways; success when the lock
site's x is within 2 cm of the goal's."""

import jax.numpy as jnp

from ..port import Read, TaskPort
from ..rewards import norm, tolerance
from ._doors_and_windows import LOCK_LENGTH, lock_objects, lock_reads

SHOULDER_OFFSET = jnp.array([0.0, 0.055, 0.07])  # from the fingers up to the gripper's shoulder
SCALE = jnp.array([0.25, 1.0, 0.5])


def reward(frame, consts, obs, action):
    gripper, lock = obs[:, :3], obs[:, 4:7]
    shoulder_to_lock = (gripper + SHOULDER_OFFSET - lock) * SCALE
    # metaworld's `obj_init_pos` is a view of the lock_link body's position: the current one.
    shoulder_to_lock_init = (consts.init_tcp + SHOULDER_OFFSET - frame.lock_link) * SCALE
    ready_to_push = tolerance(
        norm(shoulder_to_lock), bounds=(0, 0.02), margin=norm(shoulder_to_lock_init), sigmoid="long_tail"
    )
    obj_to_target = jnp.abs(consts.target_pos[:, 0] - lock[:, 0])
    pushed = tolerance(obj_to_target, bounds=(0, 0.005), margin=LOCK_LENGTH, sigmoid="long_tail")
    return 2 * ready_to_push + 8 * pushed, obj_to_target <= 0.02


PORT = TaskPort(
    reads={**lock_reads("lockStartUnlock"), "lock_link": Read("body_pos", "lock_link")},
    constants={},
    objects=lock_objects,
    reward=reward,
)
