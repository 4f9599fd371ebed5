"""box-close-v3 (`SawyerBoxCloseEnvV3`): lift the lid by its handle and put it on the box, upright.

Success: the lid (`top_link`) within 8 cm of the goal. The whole reward is scaled by how upright the
lid is, so a flipped lid earns nothing even on success.
"""

import jax.numpy as jnp

from ..port import Read, TaskPort
from ..rewards import hamacher_product, norm, tolerance

UPRIGHT_QUAT = jnp.array([0.707, 0.0, 0.0, 0.707])  # MuJoCo (w, x, y, z)
HANDLE_OFFSET = jnp.array([0.0, 0.0, 0.02])
Z_EMPHASIS = jnp.array([1.0, 1.0, 3.0])


def objects(frame):
    return frame.lid, frame.lid_quat


def grab_effort(action):
    return jnp.clip((jnp.clip(action[:, 3], -1, 1) + 1.0) / 2.0, 0.0, 1.0)


def upright(obs):
    error = norm(obs[:, 7:11] - UPRIGHT_QUAT)
    return jnp.maximum(1.0 - error / 0.2, 0.0)


def above_floor(hand, lid):
    """1 above a log-shaped funnel around the handle, so the hand approaches the handle from above."""
    threshold = 0.02
    radius = norm(hand[:, :2] - lid[:, :2])
    outside = radius > threshold
    floor = jnp.where(outside, 0.04 * jnp.log(jnp.where(outside, radius - threshold, 1.0)) + 0.4, 0.0)
    below = tolerance(floor - hand[:, 2], bounds=(0.0, 0.01), margin=floor / 2.0, sigmoid="long_tail")
    return jnp.where(hand[:, 2] >= floor, 1.0, below)


def reward_pos(obs, target):
    """(ready to lift: hand at the handle from above, lifted: lid raised and near the goal)."""
    hand, lid = obs[:, :3], obs[:, 4:7] + HANDLE_OFFSET
    at_handle = tolerance(norm(hand - lid), bounds=(0, 0.02), margin=0.5, sigmoid="long_tail")
    ready_to_lift = hamacher_product(above_floor(hand, lid), at_handle)
    placed = tolerance(norm((target - lid) * Z_EMPHASIS), bounds=(0, 0.05), margin=0.25, sigmoid="long_tail")
    lifted = 0.2 * (lid[:, 2] > 0.04).astype(jnp.float32) + 0.8 * placed
    return ready_to_lift, lifted


def reward(frame, consts, obs, action):
    ready_to_lift, lifted = reward_pos(obs, consts.target_pos)
    reward = 2.0 * hamacher_product(grab_effort(action), ready_to_lift) + 8.0 * lifted
    success = norm(obs[:, 4:7] - consts.target_pos) < 0.08
    reward = jnp.where(success, 10.0, reward)
    return reward * upright(obs), success


PORT = TaskPort(
    reads={"lid": Read("body_pos", "top_link"), "lid_quat": Read("body_quat", "top_link")},
    constants={},
    objects=objects,
    reward=reward,
)
