"""door-open-v3 (`SawyerDoorEnvV3`): pull the door open by its handle; success when the handle's x is
within 8 cm of the goal's x."""

import math

import jax.numpy as jnp

from ..port import Read, TaskPort
from ..rewards import hamacher_product, norm, tolerance
from ._doors_and_windows import DOOR_HANDLE_READS, door_handle_objects

FUNNEL_RADIUS = 0.12


def above_floor(hand, door):
    """1 while the hand is above a log funnel around the handle, so it does not hit it from the side."""
    radius = norm(hand[:, :2] - door[:, :2])
    outside = radius > FUNNEL_RADIUS
    safe_excess = jnp.where(outside, radius - FUNNEL_RADIUS, 1.0)
    floor = jnp.where(outside, 0.04 * jnp.log(safe_excess) + 0.4, 0.0)
    below = tolerance(floor - hand[:, 2], bounds=(0.0, 0.01), margin=floor / 2.0, sigmoid="long_tail")
    return jnp.where(hand[:, 2] >= floor, 1.0, below)


def reward_pos(obs, theta):
    """metaworld's `_reward_pos`: (ready to open, opened) from the obs and the door hinge angle."""
    hand = obs[:, :3]
    door = obs[:, 4:7] + jnp.array([-0.05, 0.0, 0.0])
    in_place = tolerance(
        norm(hand - door - jnp.array([0.05, 0.03, -0.01])),
        bounds=(0, FUNNEL_RADIUS / 2.0),
        margin=0.5,
        sigmoid="long_tail",
    )
    ready_to_open = hamacher_product(above_floor(hand, door), in_place)
    door_angle = -theta
    tried = (theta < -math.pi / 90.0).astype(obs.dtype)
    fully_open = tolerance(
        math.pi / 2.0 + math.pi / 6 - door_angle, bounds=(0, 0.5), margin=math.pi / 3.0, sigmoid="long_tail"
    )
    return ready_to_open, 0.2 * tried + 0.8 * fully_open


def reward(frame, consts, obs, action):
    grab_effort = (jnp.clip(action[:, 3], -1, 1) + 1.0) / 2.0
    ready_to_open, opened = reward_pos(obs, frame.door_angle[:, 0])
    success = jnp.abs(obs[:, 4] - consts.target_pos[:, 0]) <= 0.08
    reward = 2.0 * hamacher_product(ready_to_open, grab_effort) + 8.0 * opened
    return jnp.where(success, 10.0, reward), success


PORT = TaskPort(
    reads={**DOOR_HANDLE_READS, "door_angle": Read("qpos", "doorjoint")},
    constants={},
    objects=door_handle_objects,
    reward=reward,
)
