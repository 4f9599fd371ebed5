"""basketball-v3 (`SawyerBasketballEnvV3`): carry the ball to just above the hoop (scaled 8 cm).

Distances to the target weight height twice, and the target is the hoop's goal site raised to
z = 0.3; success uses that same scaled distance.
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import gripper_caging_reward, hamacher_product, norm, tolerance

TARGET_RADIUS = 0.08
TARGET_HEIGHT = 0.3
SCALE = jnp.array([1.0, 1.0, 2.0])


def objects(frame):
    return frame.ball, frame.ball_quat


def reward(frame, consts, obs, action):
    obj, tcp_opened, obj_init = obs[:, 4:7], obs[:, 3], consts.obj_init_pos
    target = consts.target_pos.at[:, 2].set(TARGET_HEIGHT)
    target_to_obj = norm((obj - target) * SCALE)
    in_place = tolerance(
        target_to_obj,
        bounds=(0, TARGET_RADIUS),
        margin=norm((obj_init - target) * SCALE),
        sigmoid="long_tail",
    )
    object_grasped = gripper_caging_reward(
        frame,
        consts,
        action,
        obj,
        obj_radius=0.025,
        pad_success_thresh=0.06,
        object_reach_radius=0.01,
        xz_thresh=0.005,
        high_density=True,
    )
    lifted = (norm(obj - frame.tcp) < 0.035) & (tcp_opened > 0) & (obj[:, 2] - 0.01 > obj_init[:, 2])
    object_grasped = jnp.where(lifted, 1.0, object_grasped)
    reward = hamacher_product(object_grasped, in_place)
    reward = jnp.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
    reward = jnp.where(target_to_obj < TARGET_RADIUS, 10.0, reward)
    return reward, target_to_obj <= TARGET_RADIUS


PORT = TaskPort(
    reads={"ball": Read("body_pos", "bsktball"), "ball_quat": Read("body_quat", "bsktball")},
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=objects,
    reward=reward,
)
