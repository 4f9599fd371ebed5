"""bin-picking-v3 (`SawyerBinPickingEnvV3`): carry the cube from one bin into the other (5 cm).

Metaworld measures the in-place margin as the object-to-target distance seen on the episode's first
step (`_target_to_obj_init`, set on the first `compute_reward` call), so the port latches it then.
"""

import jax.numpy as jnp

from ..port import TaskPort, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, tolerance
from ._object_observations import OBJ_BODY_READS, obj_body_objects

TARGET_RADIUS = 0.05  # SawyerXYZEnv.TARGET_RADIUS
FUNNEL_THRESHOLD = 0.03


def latch(frame, consts, obs, action):
    return {"target_to_obj_init": norm(obs[:, 4:7] - consts.target_pos)[:, None]}


def funnel_floor(radius):
    """0.02 log(r - 0.03) + 0.2 outside the funnel's throat, 0 inside it."""
    outside = radius > FUNNEL_THRESHOLD
    safe = jnp.where(outside, radius - FUNNEL_THRESHOLD, 1.0)
    return jnp.where(outside, 0.02 * jnp.log(safe) + 0.2, 0.0)


def reward(frame, consts, obs, action):
    hand, obj, target = obs[:, :3], obs[:, 4:7], consts.target_pos
    target_to_obj = norm(obj - target)
    in_place = tolerance(
        target_to_obj,
        bounds=(0, TARGET_RADIUS),
        margin=consts.target_to_obj_init[:, 0],
        sigmoid="long_tail",
    )
    # the hand stays above two funnels, around the object's start and around the goal
    floor = jnp.minimum(
        funnel_floor(norm(hand[:, :2] - consts.obj_init_pos[:, :2])),
        funnel_floor(norm(hand[:, :2] - target[:, :2])),
    )
    above_floor = jnp.where(
        hand[:, 2] >= floor,
        1.0,
        tolerance(jnp.maximum(floor - hand[:, 2], 0.0), bounds=(0.0, 0.01), margin=0.05, sigmoid="long_tail"),
    )
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        obj_radius=0.015,
        pad_success_thresh=0.05,
        object_reach_radius=0.01,
        xz_thresh=0.01,
        desired_gripper_effort=0.7,
        high_density=True,
    )
    reward = hamacher_product(object_grasped, in_place)
    near_object = norm(obj - hand) < 0.04
    pinched_without_obj = obs[:, 3] < 0.43
    lifted = obj[:, 2] - 0.02 > consts.obj_init_pos[:, 2]
    grasped = near_object & lifted & ~pinched_without_obj
    reward = jnp.where(grasped, reward + 1.0 + 5.0 * hamacher_product(above_floor, in_place), reward)
    reward = jnp.where(target_to_obj < TARGET_RADIUS, 10.0, reward)
    return reward, target_to_obj <= 0.05


PORT = TaskPort(
    reads=OBJ_BODY_READS,
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=obj_body_objects,
    reward=reward,
    latched={"target_to_obj_init": 1},
    latch=latch,
)
