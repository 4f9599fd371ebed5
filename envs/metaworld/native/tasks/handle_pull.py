"""handle-pull-v3 (`SawyerHandlePullEnvV3`): grasp the handle and pull it up; success when its height is
within 5 cm of the goal's."""

import jax.numpy as jnp

from ..port import TaskPort, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, tolerance
from ._handles_and_faucets import handle_pull_objects, handle_pull_reads

TARGET_RADIUS = 0.05  # the base class's


def reward(frame, consts, obs, action):
    obj, target, obj_init = obs[:, 4:7], consts.target_pos, consts.obj_init_pos
    target_to_obj = jnp.abs(target[:, 2] - obj[:, 2])
    in_place = tolerance(
        target_to_obj,
        bounds=(0, TARGET_RADIUS),
        margin=jnp.abs(target[:, 2] - obj_init[:, 2]),
        sigmoid="long_tail",
    )
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        obj_radius=0.022,
        pad_success_thresh=0.05,
        object_reach_radius=0.01,
        xz_thresh=0.01,
        high_density=True,
    )
    reward = hamacher_product(object_grasped, in_place)
    tcp_opened = obs[:, 3]
    tcp_to_obj = norm(obj - frame.tcp)
    # metaworld compares the handle's y (not z) with the box's initial z here; ported as written
    lifted = (tcp_to_obj < 0.035) & (tcp_opened > 0) & (obj[:, 1] - 0.01 > obj_init[:, 2])
    reward = jnp.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
    reward = jnp.where(target_to_obj < TARGET_RADIUS, 10.0, reward)
    return reward, target_to_obj <= TARGET_RADIUS


PORT = TaskPort(
    reads=handle_pull_reads("handleRight"),
    # obj_init_pos is the box position drawn at reset (not the handle), also the caging reference
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=handle_pull_objects,
    reward=reward,
)
