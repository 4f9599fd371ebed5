"""Reads, constants and the lowered-slide reward of the plate-slide ports and push ports.

plate-slide* and push* measure their margins from the same `obj_init_pos` with the same 5 cm target
radius; plate-slide*, push-back and push-wall observe their puck as a geom (position and rotation
matrix); plate-slide-back, -side and -back-side also share one reward (reach the puck, then slide
it home with the tcp low). Those common parts live here once.
"""

import jax.numpy as jnp

from ..port import Read, attribute
from ..rewards import norm, quat_from_matrix, tolerance

TARGET_RADIUS = 0.05
OBJ_INIT_POS = {"obj_init_pos": attribute("obj_init_pos")}  # built fresh in reset_model: a true constant


def geom_reads(geom: str) -> dict:
    """The observed object is a geom: its world position and rotation matrix."""
    return {"obj": Read("geom_pos", geom), "obj_mat": Read("geom_mat", geom)}


def geom_objects(frame):
    return frame.obj, quat_from_matrix(frame.obj_mat)


def plate_slide_lowered_reward(frame, consts, obs, action):
    """plate-slide-back, -side and -back-side: reach the puck, then with the tcp low slide it home.

    Both tolerance margins are shrunk by the target radius. Success is the puck within 7 cm.
    """
    obj, target, tcp = obs[:, 4:7], consts.target_pos, frame.tcp
    obj_to_target = norm(obj - target)
    in_place = tolerance(
        obj_to_target,
        bounds=(0, TARGET_RADIUS),
        margin=norm(consts.obj_init_pos - target) - TARGET_RADIUS,
        sigmoid="long_tail",
    )
    tcp_to_obj = norm(tcp - obj)
    object_grasped = tolerance(
        tcp_to_obj,
        bounds=(0, TARGET_RADIUS),
        margin=norm(consts.init_tcp - consts.obj_init_pos) - TARGET_RADIUS,
        sigmoid="long_tail",
    )
    reward = 1.5 * object_grasped
    pushing = (tcp[:, 2] <= 0.03) & (tcp_to_obj < 0.07)
    reward = jnp.where(pushing, 2.0 + 7.0 * in_place, reward)
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.07
