"""soccer-v3 (`SawyerSoccerEnvV3`): push the ball into the goal, within 7 cm of the goal position.

The reward measures distances with x weighted 3x and penalises a ball past the goal line but wide of
the goal; success uses the plain 3-D distance (at most 7 cm).
"""

import jax.numpy as jnp

from ..port import Read, TaskPort, attribute
from ..rewards import norm, quat_from_matrix, tolerance
from ._push_caging import push_caging_reward

OBJ_RADIUS = 0.013
TARGET_RADIUS = 0.07
X_SCALING = jnp.array([3.0, 1.0, 1.0])


def objects(frame):
    return frame.ball, quat_from_matrix(frame.ball_mat)


def wide_of_goal_penalty(in_place, obj, target):
    """Past the line 10 cm before the goal but more than 10 cm off its x: in_place shrinks with depth."""
    goal_line = target[:, 1] - 0.1
    wide = (obj[:, 1] > goal_line) & (jnp.abs(obj[:, 0] - target[:, 0]) > 0.10)
    penalised = jnp.clip(in_place - 2 * ((obj[:, 1] - goal_line) / (1 - goal_line)), 0.0, 1.0)
    return jnp.where(wide, penalised, in_place)


def reward(frame, consts, obs, action):
    obj, target = obs[:, 4:7], consts.target_pos
    target_to_obj = norm((obj - target) * X_SCALING)
    # The margin is how far the ball has moved from its start (not the start's distance to the goal).
    moved = norm((obj - consts.obj_init_pos) * X_SCALING)
    in_place = tolerance(target_to_obj, bounds=(0, TARGET_RADIUS), margin=moved, sigmoid="long_tail")
    in_place = wide_of_goal_penalty(in_place, obj, target)
    object_grasped = push_caging_reward(
        frame, consts, obj, obj_radius=OBJ_RADIUS, grip_slack=0.01, xz_success_margin=0.005
    )
    reward = 3 * object_grasped + 6.5 * in_place
    reward = jnp.where(target_to_obj < TARGET_RADIUS, 10.0, reward)
    return reward, norm(obj - target) <= 0.07


PORT = TaskPort(
    reads={"ball": Read("body_pos", "soccer_ball"), "ball_mat": Read("body_mat", "soccer_ball")},
    constants={"obj_init_pos": attribute("obj_init_pos")},
    objects=objects,
    reward=reward,
)
