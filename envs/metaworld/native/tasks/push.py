"""push-v3 (`SawyerPushEnvV3`): push the puck across the table to the goal; success within 5 cm."""

import jax.numpy as jnp

from ..port import Read, TaskPort
from ..rewards import gripper_caging_reward, norm, quat_from_matrix, tolerance
from ._slide_and_push import OBJ_INIT_POS, TARGET_RADIUS


def objects(frame):
    return frame.obj, quat_from_matrix(frame.obj_mat)


def reward(frame, consts, obs, action):
    obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], consts.target_pos
    tcp_to_obj = norm(obj - frame.tcp)
    target_to_obj = norm(obj - target)
    in_place = tolerance(
        target_to_obj,
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
    # metaworld adds the running reward to itself here: 2 * (2 * grasped) + 1 + 5 * in_place.
    reward = jnp.where((tcp_to_obj < 0.02) & (tcp_opened > 0), reward + 1.0 + reward + 5.0 * in_place, reward)
    reward = jnp.where(target_to_obj < TARGET_RADIUS, 10.0, reward)
    return reward, target_to_obj <= TARGET_RADIUS


PORT = TaskPort(
    reads={"obj": Read("body_pos", "obj"), "obj_mat": Read("geom_mat", "objGeom")},
    constants=OBJ_INIT_POS,
    objects=objects,
    reward=reward,
)
