"""push-back-v3 (`SawyerPushBackEnvV3`): push the puck back toward the robot; success within 7 cm."""

import jax.numpy as jnp

from ..port import TaskPort
from ..rewards import hamacher_product, norm, tolerance
from ._slide_and_push import OBJ_INIT_POS, TARGET_RADIUS, geom_objects, geom_reads

OBJ_RADIUS = 0.007


def caging_reward(frame, consts, obj):
    """The task's own `_gripper_caging_reward` override: y caging and gripping by the pads, x-z caging.

    metaworld measures the pad margins from `init_left_pad`/`init_right_pad`, which alias the current
    pads, so the current pads are used. The gripper action plays no part.
    """
    pad_success_margin, grip_success_margin, x_z_success_margin = 0.05, OBJ_RADIUS + 0.003, 0.01
    left_delta = frame.left_pad[:, 1] - obj[:, 1]
    right_delta = obj[:, 1] - frame.right_pad[:, 1]
    left_margin = jnp.abs(jnp.abs(obj[:, 1] - frame.left_pad[:, 1]) - pad_success_margin)
    right_margin = jnp.abs(jnp.abs(obj[:, 1] - frame.right_pad[:, 1]) - pad_success_margin)

    def pad_tolerance(delta, upper, margin):
        return tolerance(delta, bounds=(OBJ_RADIUS, upper), margin=margin, sigmoid="long_tail")

    y_caging = hamacher_product(
        pad_tolerance(right_delta, pad_success_margin, right_margin),
        pad_tolerance(left_delta, pad_success_margin, left_margin),
    )
    y_gripping = hamacher_product(
        pad_tolerance(right_delta, grip_success_margin, right_margin),
        pad_tolerance(left_delta, grip_success_margin, left_margin),
    )
    xz = jnp.array([0, 2])
    x_z_margin = norm(consts.obj_init_pos[:, xz] - consts.init_tcp[:, xz]) - x_z_success_margin
    x_z_caging = tolerance(
        norm(frame.tcp[:, xz] - obj[:, xz]),
        bounds=(0, x_z_success_margin),
        margin=x_z_margin,
        sigmoid="long_tail",
    )
    caging = hamacher_product(y_caging, x_z_caging)
    gripping = jnp.where(caging > 0.95, y_gripping, 0.0)
    return (caging + gripping) / 2


def reward(frame, consts, obs, action):
    obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], consts.target_pos
    tcp_to_obj = norm(obj - frame.tcp)
    target_to_obj = norm(obj - target)
    target_to_obj_init = norm(consts.obj_init_pos - target)
    in_place = tolerance(
        target_to_obj, bounds=(0, TARGET_RADIUS), margin=target_to_obj_init, sigmoid="long_tail"
    )
    reward = hamacher_product(caging_reward(frame, consts, obj), in_place)
    pushing = (
        (tcp_to_obj < 0.01)
        & (tcp_opened > 0)
        & (tcp_opened < 0.55)
        & (target_to_obj_init - target_to_obj > 0.01)
    )
    reward = jnp.where(pushing, reward + 1.0 + 5.0 * in_place, reward)
    reward = jnp.where(target_to_obj < TARGET_RADIUS, 10.0, reward)
    return reward, target_to_obj <= 0.07


PORT = TaskPort(reads=geom_reads("objGeom"), constants=OBJ_INIT_POS, objects=geom_objects, reward=reward)
