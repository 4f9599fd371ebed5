"""pick-place-v3 (`SawyerPickPlaceEnvV3`): grasp the puck and carry it within 7 cm of the goal."""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import hamacher_product, norm, quat_from_matrix, tolerance

TARGET_RADIUS = 0.05


def objects(frame):
    return frame.obj, quat_from_matrix(frame.obj_mat)


def caging_reward(frame, consts, action, obj_pos):
    """The task's own `_gripper_caging_reward` override (not the base class's)."""
    pad_success_margin, x_z_success_margin, obj_radius = 0.05, 0.005, 0.015
    left_caging = tolerance(
        frame.left_pad[:, 1] - obj_pos[:, 1],
        bounds=(obj_radius, pad_success_margin),
        margin=jnp.abs(jnp.abs(obj_pos[:, 1] - frame.left_pad[:, 1]) - pad_success_margin),
        sigmoid="long_tail",
    )
    right_caging = tolerance(
        obj_pos[:, 1] - frame.right_pad[:, 1],
        bounds=(obj_radius, pad_success_margin),
        margin=jnp.abs(jnp.abs(obj_pos[:, 1] - frame.right_pad[:, 1]) - pad_success_margin),
        sigmoid="long_tail",
    )
    y_caging = hamacher_product(left_caging, right_caging)
    xz = jnp.array([0, 2])
    x_z_margin = norm(consts.obj_init_pos[:, xz] - consts.init_tcp[:, xz]) - x_z_success_margin
    x_z_caging = tolerance(
        norm(frame.tcp[:, xz] - obj_pos[:, xz]),
        bounds=(0, x_z_success_margin),
        margin=x_z_margin,
        sigmoid="long_tail",
    )
    gripper_closed = jnp.minimum(jnp.maximum(0, action[:, -1]), 1)
    caging = hamacher_product(y_caging, x_z_caging)
    gripping = jnp.where(caging > 0.97, gripper_closed, 0.0)
    return (hamacher_product(caging, gripping) + caging) / 2


def reward(frame, consts, obs, action):
    obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], consts.target_pos
    obj_to_target = norm(obj - target)
    tcp_to_obj = norm(obj - frame.tcp)
    in_place_margin = norm(consts.obj_init_pos - target)
    in_place = tolerance(
        obj_to_target, bounds=(0, TARGET_RADIUS), margin=in_place_margin, sigmoid="long_tail"
    )
    object_grasped = caging_reward(frame, consts, action, obj)
    reward = hamacher_product(object_grasped, in_place)
    lifted = (tcp_to_obj < 0.02) & (tcp_opened > 0) & (obj[:, 2] - 0.01 > consts.obj_init_pos[:, 2])
    reward = jnp.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.07


PORT = TaskPort(
    reads={"obj": Read("body_pos", "obj"), "obj_mat": Read("geom_mat", "objGeom")},
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=objects,
    reward=reward,
)
