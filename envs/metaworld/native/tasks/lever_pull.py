"""lever-pull-v3 (`SawyerLeverPullEnvV3`): swing the lever up to vertical; success when its joint angle
is within 7.5 degrees (pi/24) of 90 degrees."""

import math

import jax.numpy as jnp
import numpy as np

from ..port import Constant, Read, TaskPort
from ..rewards import hamacher_product, norm, quat_from_matrix, tolerance

SCALE = (4.0, 1.0, 4.0)  # y error matters less: get under the lever first
SHOULDER_OFFSET = (0.0, 0.055, 0.07)  # from the hand to the part that should push the lever


def objects(frame):
    return frame.lever, quat_from_matrix(frame.lever_mat)


def reward(frame, consts, obs, action):
    # metaworld measures from the observed hand now but from the tcp at reset (the margin)
    gripper, lever = obs[:, :3], obs[:, 4:7]
    # subtract the nearby positions first: exact in float32, unlike adding the offset to one of them first
    shoulder_to_lever = norm(((gripper - lever) + jnp.array(SHOULDER_OFFSET)) * jnp.array(SCALE))
    ready_to_lift = tolerance(
        shoulder_to_lever, bounds=(0, 0.02), margin=consts.lever_margins[:, 0], sigmoid="long_tail"
    )
    in_place = tolerance(
        norm(lever - consts.target_pos),
        bounds=(0, 0.04),
        margin=consts.lever_margins[:, 1],
        sigmoid="long_tail",
    )
    # only the success flag uses the joint angle; the reward's engagement term is info-only
    lever_error = jnp.abs(-frame.lever_angle[:, 0] - math.pi / 2)
    return 10.0 * hamacher_product(ready_to_lift, in_place), lever_error <= math.pi / 24


def _lever_margins(env):
    """(ready-to-lift margin, in-place margin) in float64, from `_lever_pos_init` (fresh at reset)."""
    lever_init = env._lever_pos_init
    return (
        np.linalg.norm((env.init_tcp + np.array(SHOULDER_OFFSET) - lever_init) * np.array(SCALE)),
        np.linalg.norm(lever_init - env._target_pos),
    )


PORT = TaskPort(
    reads={
        "lever": Read("site_pos", "leverStart"),
        "lever_mat": Read("geom_mat", "objGeom"),
        "lever_angle": Read("qpos", "LeverAxis"),
    },
    constants={"lever_margins": Constant(2, _lever_margins)},
    objects=objects,
    reward=reward,
)
