"""hand-insert-v3 (`SawyerHandInsertEnvV3`): push the block into the hole, within 5 cm of the goal."""

import jax.numpy as jnp

from ..port import TaskPort, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, tolerance
from ._object_observations import OBJ_BODY_READS, obj_body_objects

TARGET_RADIUS = 0.05


def reward(frame, consts, obs, action):
    obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], consts.target_pos
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
    reward = hamacher_product(object_grasped, in_place)
    holding = (norm(obj - frame.tcp) < 0.02) & (tcp_opened > 0)
    reward = jnp.where(holding, reward + 1.0 + 7.0 * in_place, reward)
    reward = jnp.where(target_to_obj < TARGET_RADIUS, 10.0, reward)
    return reward, target_to_obj <= TARGET_RADIUS


PORT = TaskPort(
    reads=OBJ_BODY_READS,
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=obj_body_objects,
    reward=reward,
)
