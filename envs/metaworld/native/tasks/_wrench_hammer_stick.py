"""Reward pieces of the long-handled tool ports (assembly, disassemble, hammer) and the stick ports.

The wrench (assembly, disassemble) and the hammer are grasped by a long handle, so metaworld snaps
the object's x to the hand's before the caging reward, scores the tool's orientation against an
ideal quaternion and rewards lifting plus placement the same way; stick-pull and stick-push observe
the stick and a container point alike. Those shared pieces live here once.
"""

import jax.numpy as jnp

from ..rewards import norm, quat_from_matrix, tolerance


def snap_x_to_hand(obj, hand, half_length: float):
    """The object position with its x replaced by the hand's x when the hand is within `half_length`.

    Metaworld does this for long handles (wrench, hammer) so that the sphere-shaped caging reward
    accepts a grasp anywhere along the handle.
    """
    near = jnp.abs(obj[:, 0] - hand[:, 0]) < half_length
    return obj.at[:, 0].set(jnp.where(near, hand[:, 0], obj[:, 0]))


def quat_reward(obs, ideal):
    """1 when the observed quaternion `obs[:, 7:11]` equals `ideal`, falling linearly to 0 at distance 0.4."""
    error = norm(obs[:, 7:11] - jnp.asarray(ideal, jnp.float32))
    return jnp.maximum(1.0 - error / 0.4, 0.0)


def lift_and_place(lifted, placement_error, margin: float):
    """0.1 for having lifted the object plus 0.9 times the long-tail closeness of its placement."""
    closeness = tolerance(placement_error, bounds=(0, 0.02), margin=margin, sigmoid="long_tail")
    return 0.1 * lifted.astype(jnp.float32) + 0.9 * closeness


def stick_objects(frame, container):
    """The stick body (position, orientation from its rotation matrix), then a container point (no quat)."""
    zeros = jnp.zeros((frame.stick.shape[0], 4), frame.stick.dtype)
    return (
        jnp.concatenate([frame.stick, container], axis=1),
        jnp.concatenate([quat_from_matrix(frame.stick_mat), zeros], axis=1),
    )
