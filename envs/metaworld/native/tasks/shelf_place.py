"""shelf-place-v3 (`SawyerShelfPlaceEnvV3`): put the block on the shelf, within 7 cm of the goal.

The lift bonus is cut while the block is under the shelf's height in front of it (more the closer it
is) and zeroed once it is under that height behind the goal, so the block is carried over the edge.
"""

import jax.numpy as jnp

from ..port import TaskPort, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, tolerance
from ._object_observations import OBJ_GEOM_MAT_READS, obj_geom_mat_objects

TARGET_RADIUS = 0.05
SHELF_HEIGHT = 0.24
SHELF_HALF_WIDTH = 0.15
FRONT_DEPTH = 3 * TARGET_RADIUS  # the strip in front of the goal where the bonus is cut


def bonus_in_place(in_place, obj, target):
    """The in-place term of the lift bonus, cut in front of the shelf and zeroed behind the goal."""
    low = (0.0 < obj[:, 2]) & (obj[:, 2] < SHELF_HEIGHT)
    in_x = (target[:, 0] - SHELF_HALF_WIDTH < obj[:, 0]) & (obj[:, 0] < target[:, 0] + SHELF_HALF_WIDTH)
    front_y = target[:, 1] - FRONT_DEPTH
    in_front = low & in_x & (front_y < obj[:, 1]) & (obj[:, 1] < target[:, 1])
    z_scaling = (SHELF_HEIGHT - obj[:, 2]) / SHELF_HEIGHT
    y_scaling = (obj[:, 1] - front_y) / FRONT_DEPTH
    cut = jnp.clip(in_place - hamacher_product(y_scaling, z_scaling), 0.0, 1.0)
    in_place = jnp.where(in_front, cut, in_place)
    behind = low & in_x & (obj[:, 1] > target[:, 1])
    return jnp.where(behind, 0.0, in_place)


def reward(frame, consts, obs, action):
    obj, tcp_opened, target, obj_init = obs[:, 4:7], obs[:, 3], consts.target_pos, consts.obj_init_pos
    obj_to_target = norm(obj - target)
    in_place = tolerance(
        obj_to_target, bounds=(0, TARGET_RADIUS), margin=norm(obj_init - target), sigmoid="long_tail"
    )
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        obj_radius=0.02,
        pad_success_thresh=0.05,
        object_reach_radius=0.01,
        xz_thresh=0.01,
    )
    reward = hamacher_product(object_grasped, in_place)
    lifted = (norm(obj - frame.tcp) < 0.025) & (tcp_opened > 0) & (obj[:, 2] - 0.01 > obj_init[:, 2])
    reward = jnp.where(lifted, reward + 1.0 + 5.0 * bonus_in_place(in_place, obj, target), reward)
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.07


PORT = TaskPort(
    reads=OBJ_GEOM_MAT_READS,
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=obj_geom_mat_objects,
    reward=reward,
)
