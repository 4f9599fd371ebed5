"""Reads, constants and rewards of the handle ports (handle-press*, handle-pull*) and faucet ports.

handle-press and handle-press-side share their observed site, float64 margins and reward;
handle-pull and handle-pull-side their observed site; faucet-open and faucet-close their lowered
handle point, margins and reward. Each pair's common part lives here once, so the task modules keep
only what differs (sites, goals, success tests).
"""

import jax.numpy as jnp
import numpy as np

from ..port import Constant, Read
from ..rewards import hamacher_product, norm, tolerance
from ._precise_offsets import split, tcp_to


def no_quat(pos):
    """Zero quaternions for tasks whose `_get_quat_objects` is `np.zeros(4)`."""
    return jnp.zeros((pos.shape[0], 4), pos.dtype)


# handle-press / handle-press-side: the observed object is the `handleStart` site, no orientation.
HANDLE_PRESS_READS = {"handle": Read("site_pos", "handleStart")}
HANDLE_RADIUS = 0.02  # both the press target radius and the reach radius


def _handle_press_margins(env):
    """(in-place margin, reach margin) in float64; `_handle_init_pos` is a copy of the site at reset."""
    handle_init, target = env._handle_init_pos, env._target_pos
    return (
        abs(abs(handle_init[2] - target[2]) - HANDLE_RADIUS),
        abs(np.linalg.norm(handle_init - env.init_tcp) - HANDLE_RADIUS),
    )


HANDLE_PRESS_CONSTANTS = {
    "handle_press_margins": Constant(2, _handle_press_margins),
    "handle_init": Constant(6, lambda env: split(env._handle_init_pos)),  # x, y stay put while pressed
}


def handle_press_objects(frame):
    return frame.handle, no_quat(frame.handle)


def handle_press_reward(frame, consts, obs, action):
    """Both handle-press tasks: bring the handle's height within 2 cm of the goal's, reaching it.

    The reward uses the site itself (`_get_pos_objects`), not the clipped observation.
    """
    handle, margins = frame.handle, consts.handle_press_margins
    target_to_obj = jnp.abs(handle[:, 2] - consts.target_pos[:, 2])
    in_place = tolerance(target_to_obj, bounds=(0, HANDLE_RADIUS), margin=margins[:, 0], sigmoid="long_tail")
    reach = tolerance(
        norm(tcp_to(frame, handle, consts.handle_init)),
        bounds=(0, HANDLE_RADIUS),
        margin=margins[:, 1],
        sigmoid="long_tail",
    )
    pressed = target_to_obj <= HANDLE_RADIUS
    reward = 10 * jnp.where(pressed, 1.0, hamacher_product(reach, in_place))
    return reward, pressed


# handle-pull / handle-pull-side: a handle site, no orientation; the grasp is the base class's caging.
def handle_pull_reads(site: str) -> dict:
    return {"handle": Read("site_pos", site)}


def handle_pull_objects(frame):
    return frame.handle, no_quat(frame.handle)


# faucet-open / faucet-close: a handle site lowered by 1 cm, with the faucet base's MuJoCo quaternion.
FAUCET_TARGET_RADIUS = 0.07  # metaworld's `_target_radius`
FAUCET_REACH_RADIUS = 0.01
HANDLE_DROP = jnp.array([0.0, 0.0, -0.01])


def faucet_reads(site: str) -> dict:
    return {"handle": Read("site_pos", site), "base_quat": Read("body_quat", "faucetBase")}


def faucet_objects(frame):
    return frame.handle + HANDLE_DROP, frame.base_quat


def faucet_reward(frame, consts, obj):
    """Both faucet tasks: turn the handle point `obj` [envs, 3] within 7 cm of the goal, reaching it.

    Both margins are measured from the faucet base (`obj_init_pos`), as metaworld does; they are
    computed in float64 on the host.
    """
    margins = consts.faucet_margins
    target_to_obj = norm(obj - consts.target_pos)
    in_place = tolerance(
        target_to_obj, bounds=(0, FAUCET_TARGET_RADIUS), margin=margins[:, 0], sigmoid="long_tail"
    )
    reach = tolerance(
        norm(tcp_to(frame, obj)), bounds=(0, FAUCET_REACH_RADIUS), margin=margins[:, 1], sigmoid="gaussian"
    )
    turned = target_to_obj <= FAUCET_TARGET_RADIUS
    reward = jnp.where(turned, 10.0, 2 * (2 * reach + 3 * in_place))
    return reward, turned


def _faucet_margins(env):
    """(in-place margin, reach margin); `obj_init_pos` is the faucet base drawn at reset."""
    base = env.obj_init_pos
    return (
        abs(np.linalg.norm(base - env._target_pos) - FAUCET_TARGET_RADIUS),
        abs(np.linalg.norm(base - env.init_tcp) - FAUCET_REACH_RADIUS),
    )


FAUCET_CONSTANTS = {"faucet_margins": Constant(2, _faucet_margins)}
