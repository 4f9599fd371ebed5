"""pick-out-of-hole-v3 (`SawyerPickOutOfHoleEnvV3`): lift the peg out of its hole to the goal (7 cm).

While holding the peg, the hand is kept above a funnel-shaped floor around the hole so that it does
not drag the peg against the hole's rim.
"""

import jax.numpy as jnp

from ..port import TaskPort, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, tolerance
from ._object_observations import OBJ_BODY_READS, obj_body_objects

IN_PLACE_RADIUS = 0.02  # the class's `_TARGET_RADIUS`, used for the in-place tolerance
MAX_REWARD_RADIUS = 0.05  # the code checks `self.TARGET_RADIUS`, the base class's 0.05, not 0.02
FUNNEL_THRESHOLD = 0.03


def above_floor(tcp, obj_init_pos):
    """1 above the funnel floor 0.015 log(r - 0.03) + 0.15 (0 within 3 cm of the hole), else decaying."""
    radius = norm(tcp[:, :2] - obj_init_pos[:, :2])
    outside = radius > FUNNEL_THRESHOLD
    safe_log = jnp.log(jnp.where(outside, radius - FUNNEL_THRESHOLD, 1.0))
    floor = jnp.where(outside, 0.015 * safe_log + 0.15, 0.0)
    below = tolerance(
        jnp.maximum(floor - tcp[:, 2], 0.0), bounds=(0.0, 0.01), margin=0.02, sigmoid="long_tail"
    )
    return jnp.where(tcp[:, 2] >= floor, 1.0, below)


def reward(frame, consts, obs, action):
    obj, target, obj_init, tcp = obs[:, 4:7], consts.target_pos, consts.obj_init_pos, frame.tcp
    obj_to_target = norm(obj - target)
    in_place = tolerance(
        obj_to_target, bounds=(0, IN_PLACE_RADIUS), margin=norm(obj_init - target), sigmoid="long_tail"
    )
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        obj_radius=0.015,
        pad_success_thresh=0.02,
        object_reach_radius=0.01,
        xz_thresh=0.03,
        desired_gripper_effort=0.1,
        high_density=True,
    )
    reward = hamacher_product(object_grasped, in_place)
    near_object = norm(obj - tcp) < 0.04
    pinched_without_obj = obs[:, 3] < 0.33
    lifted = obj[:, 2] - 0.02 > obj_init[:, 2]
    grasp_success = near_object & lifted & ~pinched_without_obj
    bonus = 1.0 + 5.0 * hamacher_product(in_place, above_floor(tcp, obj_init))
    reward = jnp.where(grasp_success, reward + bonus, reward)
    reward = jnp.where(obj_to_target < MAX_REWARD_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.07


PORT = TaskPort(
    reads=OBJ_BODY_READS,
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=obj_body_objects,
    reward=reward,
)
