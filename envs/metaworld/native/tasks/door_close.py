"""door-close-v3 (`SawyerDoorCloseEnvV3`): swing the open door shut; success when the handle is within
8 cm of the goal (the reward saturates at 10 within 5 cm)."""

import jax.numpy as jnp

from ..port import TaskPort, attribute
from ..rewards import norm, tolerance
from ._doors_and_windows import DOOR_HANDLE_READS, door_handle_objects

TARGET_RADIUS = 0.05


def reward(frame, consts, obs, action):
    obj, target = obs[:, 4:7], consts.target_pos
    tcp_to_target = norm(frame.tcp - target)
    obj_to_target = norm(obj - target)
    in_place = tolerance(
        obj_to_target,
        bounds=(0, TARGET_RADIUS),
        margin=norm(consts.obj_init_pos - target),
        sigmoid="gaussian",
    )
    # The hand is scored on reaching the *goal*, with a margin from its start to the handle.
    hand_margin = norm(consts.hand_init_pos - obj) + 0.1
    hand_in_place = tolerance(
        tcp_to_target, bounds=(0, 0.25 * TARGET_RADIUS), margin=hand_margin, sigmoid="gaussian"
    )
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, 3 * hand_in_place + 6 * in_place)
    return reward, obj_to_target <= 0.08


PORT = TaskPort(
    reads=DOOR_HANDLE_READS,
    constants={"obj_init_pos": attribute("obj_init_pos"), "hand_init_pos": attribute("hand_init_pos")},
    objects=door_handle_objects,
    reward=reward,
)
