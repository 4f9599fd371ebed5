"""sweep-into-v3 (`SawyerSweepIntoGoalEnvV3`): push the puck into the hole, within 5 cm of it in x-y.

The target takes the puck's own height, so both the reward and success (distance <= 5 cm) ignore z.
"""

import jax.numpy as jnp

from ..port import TaskPort, attribute
from ..rewards import hamacher_product, norm, tolerance
from ._object_observations import OBJ_GEOM_MAT_READS, obj_geom_mat_objects
from ._push_caging import push_caging_reward

TARGET_RADIUS = 0.05
OBJ_RADIUS = 0.02


def reward(frame, consts, obs, action):
    obj, target, obj_init = obs[:, 4:7], consts.target_pos, consts.obj_init_pos
    # The target is (goal x, goal y, puck z): its z offset to the puck is exactly 0.
    obj_to_target = norm(obj[:, :2] - target[:, :2])
    init_offset = jnp.concatenate([obj_init[:, :2] - target[:, :2], obj_init[:, 2:] - obj[:, 2:]], axis=1)
    in_place = tolerance(
        obj_to_target, bounds=(0, TARGET_RADIUS), margin=norm(init_offset), sigmoid="long_tail"
    )
    object_grasped = push_caging_reward(
        frame, consts, obj, obj_radius=OBJ_RADIUS, grip_slack=0.005, xz_success_margin=0.01
    )
    reward = 2 * object_grasped + 6 * hamacher_product(object_grasped, in_place)
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.05


PORT = TaskPort(
    reads=OBJ_GEOM_MAT_READS,
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=obj_geom_mat_objects,
    reward=reward,
)
