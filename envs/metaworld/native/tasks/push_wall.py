"""push-wall-v3 (`SawyerPushWallEnvV3`): push the puck around the wall to the goal; success within 7 cm.

The in-place reward is staged: first toward a waypoint beside the wall, then (once the puck is past
y = 0.75) toward the goal.
"""

import jax.numpy as jnp

from ..port import TaskPort
from ..rewards import gripper_caging_reward, norm, tolerance
from ._slide_and_push import OBJ_INIT_POS, TARGET_RADIUS, geom_objects, geom_reads

IN_PLACE_SCALING = jnp.array([3.0, 1.0, 1.0])


def reward(frame, consts, obs, action):
    obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], consts.target_pos
    midpoint = jnp.stack([jnp.full_like(obj[:, 2], -0.05), jnp.full_like(obj[:, 2], 0.77), obj[:, 2]], 1)
    tcp_to_obj = norm(obj - frame.tcp)
    obj_to_target = norm(obj - target)
    in_place_part1 = tolerance(
        norm((obj - midpoint) * IN_PLACE_SCALING),
        bounds=(0, TARGET_RADIUS),
        margin=norm((consts.obj_init_pos - midpoint) * IN_PLACE_SCALING),
        sigmoid="long_tail",
    )
    in_place_part2 = tolerance(
        obj_to_target,
        bounds=(0, TARGET_RADIUS),
        margin=norm(consts.obj_init_pos - target),
        sigmoid="long_tail",
    )
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        obj_radius=0.015,
        pad_success_thresh=0.05,
        object_reach_radius=0.01,
        xz_thresh=0.005,
        high_density=True,
    )
    reward = 2.0 * object_grasped
    near = (tcp_to_obj < 0.02) & (tcp_opened > 0)
    stage = jnp.where(obj[:, 1] > 0.75, 1.0 + 4.0 + 3.0 * in_place_part2, 1.0 + 4.0 * in_place_part1)
    reward = jnp.where(near, 2.0 * object_grasped + stage, reward)
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.07


PORT = TaskPort(reads=geom_reads("objGeom"), constants=OBJ_INIT_POS, objects=geom_objects, reward=reward)
