"""pick-place-wall-v3 (`SawyerPickPlaceWallEnvV3`): lift the puck over a wall to the goal (7 cm).

The reward first guides the puck to a waypoint above the wall (`midpoint`, height weighted 3x), then,
once the puck is past the wall (y > 0.75) while held, to the goal itself.
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, quat_from_matrix, tolerance

TARGET_RADIUS = 0.05
MIDPOINT_Y, MIDPOINT_Z = 0.77, 0.25  # the waypoint above the wall, at the goal's x
MIDPOINT_SCALE = jnp.array([1.0, 1.0, 3.0])


def objects(frame):
    return frame.obj, quat_from_matrix(frame.obj_mat)


def reward(frame, consts, obs, action):
    obj, tcp_opened, target, obj_init = obs[:, 4:7], obs[:, 3], consts.target_pos, consts.obj_init_pos
    midpoint = jnp.stack(
        [target[:, 0], jnp.full_like(target[:, 0], MIDPOINT_Y), jnp.full_like(target[:, 0], MIDPOINT_Z)],
        axis=1,
    )
    obj_to_target = norm(obj - target)
    in_place_midpoint = tolerance(
        norm((obj - midpoint) * MIDPOINT_SCALE),
        bounds=(0, TARGET_RADIUS),
        margin=norm((obj_init - midpoint) * MIDPOINT_SCALE),
        sigmoid="long_tail",
    )
    in_place_target = tolerance(
        obj_to_target, bounds=(0, TARGET_RADIUS), margin=norm(obj_init - target), sigmoid="long_tail"
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
    )
    grasped_to_midpoint = hamacher_product(object_grasped, in_place_midpoint)
    lifted = (norm(obj - frame.tcp) < 0.02) & (tcp_opened > 0) & (obj[:, 2] - 0.015 > obj_init[:, 2])
    carried = jnp.where(
        obj[:, 1] > 0.75,
        grasped_to_midpoint + 1.0 + 4.0 + 3.0 * in_place_target,
        grasped_to_midpoint + 1.0 + 4.0 * in_place_midpoint,
    )
    reward = jnp.where(lifted, carried, grasped_to_midpoint)
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.07


PORT = TaskPort(
    reads={"obj": Read("geom_pos", "objGeom"), "obj_mat": Read("geom_mat", "objGeom")},
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=objects,
    reward=reward,
)
