"""plate-slide-v3 (`SawyerPlateSlideEnvV3`): slide the puck forward into the goal, 7 cm tolerance."""

import jax.numpy as jnp

from ..port import TaskPort
from ..rewards import hamacher_product, norm, tolerance
from ._slide_and_push import OBJ_INIT_POS, TARGET_RADIUS, geom_objects, geom_reads


def reward(frame, consts, obs, action):
    obj, target = obs[:, 4:7], consts.target_pos
    obj_to_target = norm(obj - target)
    in_place = tolerance(
        obj_to_target,
        bounds=(0, TARGET_RADIUS),
        margin=norm(consts.obj_init_pos - target),
        sigmoid="long_tail",
    )
    object_grasped = tolerance(
        norm(frame.tcp - obj),
        bounds=(0, TARGET_RADIUS),
        margin=norm(consts.init_tcp - consts.obj_init_pos),
        sigmoid="long_tail",
    )
    reward = 8.0 * hamacher_product(object_grasped, in_place)
    reward = jnp.where(obj_to_target < TARGET_RADIUS, 10.0, reward)
    return reward, obj_to_target <= 0.07


PORT = TaskPort(reads=geom_reads("puck"), constants=OBJ_INIT_POS, objects=geom_objects, reward=reward)
