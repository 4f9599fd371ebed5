"""peg-insert-side-v3 (`SawyerPegInsertionSideEnvV3`): grasp the peg and push its head into the hole.

Success: the peg head is within 7 cm of the goal in the (x, 2y, 2z)-scaled distance.
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import (
    gripper_caging_reward,
    hamacher_product,
    norm,
    quat_from_matrix,
    rect_prism_tolerance,
    tolerance,
)

TARGET_RADIUS = 0.07
SCALE = jnp.array([1.0, 2.0, 2.0])  # y and z count double: pick the peg up, then insert it


def objects(frame):
    return frame.peg_grasp, quat_from_matrix(frame.peg_grasp_mat)


def reward(frame, consts, obs, action):
    obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], consts.target_pos
    tcp_to_obj = norm(obj - frame.tcp)
    obj_to_target = norm((frame.peg_head - target) * SCALE)
    # metaworld copies the peg head before it moves the peg to its new start, after the data reset: so
    # this margin is always measured from the model's default peg head, not this episode's
    in_place_margin = norm((consts.peg_head_pos_init - target) * SCALE)
    in_place = tolerance(
        obj_to_target, bounds=(0, TARGET_RADIUS), margin=in_place_margin, sigmoid="long_tail"
    )
    box_1 = rect_prism_tolerance(frame.peg_head, zero=frame.box_1_bottom_right, one=frame.box_1_top_left)
    box_2 = rect_prism_tolerance(frame.peg_head, zero=frame.box_2_bottom_right, one=frame.box_2_top_left)
    in_place = hamacher_product(in_place, hamacher_product(box_2, box_1))
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        object_reach_radius=0.01,
        obj_radius=0.0075,
        pad_success_thresh=0.03,
        xz_thresh=0.005,
        high_density=True,
    )
    lifted = (tcp_to_obj < 0.08) & (tcp_opened > 0) & (obj[:, 2] - 0.01 > consts.obj_init_pos[:, 2])
    object_grasped = jnp.where(lifted, 1.0, object_grasped)
    reward = hamacher_product(object_grasped, in_place)
    reward = jnp.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
    success = obj_to_target <= 0.07
    return jnp.where(success, 10.0, reward), success


PORT = TaskPort(
    reads={
        "peg_grasp": Read("site_pos", "pegGrasp"),
        "peg_grasp_mat": Read("site_mat", "pegGrasp"),
        "peg_head": Read("site_pos", "pegHead"),
        "box_1_bottom_right": Read("site_pos", "bottom_right_corner_collision_box_1"),
        "box_1_top_left": Read("site_pos", "top_left_corner_collision_box_1"),
        "box_2_bottom_right": Read("site_pos", "bottom_right_corner_collision_box_2"),
        "box_2_top_left": Read("site_pos", "top_left_corner_collision_box_2"),
    },
    constants={
        "obj_init_pos": attribute("obj_init_pos"),
        "peg_head_pos_init": attribute("peg_head_pos_init"),
    },
    objects=objects,
    reward=reward,
)
