"""sweep-v3 (`SawyerSweepEnvV3`): push the puck off the table's edge, within 5 cm of the goal.

The goal shares the puck's initial y; success is a 3-D distance of at most 5 cm.
"""

import jax.numpy as jnp

from ..port import TaskPort, attribute
from ..rewards import hamacher_product, norm, tolerance
from ._object_observations import OBJ_BODY_READS, obj_body_objects
from ._push_caging import push_caging_reward

TARGET_RADIUS = 0.05
OBJ_RADIUS = 0.02


def reward(frame, consts, obs, action):
    obj, target = obs[:, 4:7], consts.target_pos
    obj_to_target = norm(obj - target)
    in_place_margin = norm(consts.obj_init_pos - target)
    in_place = tolerance(
        obj_to_target, bounds=(0, TARGET_RADIUS), margin=in_place_margin, sigmoid="long_tail"
    )
    object_grasped = push_caging_reward(
        frame, consts, obj, obj_radius=OBJ_RADIUS, grip_slack=0.01, xz_success_margin=0.005
    )
    reward = 2 * object_grasped + 6 * hamacher_product(object_grasped, in_place)
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.05


PORT = TaskPort(
    reads=OBJ_BODY_READS,
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=obj_body_objects,
    reward=reward,
)
