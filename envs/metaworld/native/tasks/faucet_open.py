"""faucet-open-v3 (`SawyerFaucetOpenEnvV3`): turn the faucet handle open; success when a point near the
handle's end is within 7 cm of the goal."""

import jax.numpy as jnp

from ..port import TaskPort
from ._handles_and_faucets import FAUCET_CONSTANTS, faucet_objects, faucet_reads, faucet_reward

GRIP_OFFSET = jnp.array([-0.04, 0.0, 0.03])  # the reward (and success) use this point, not the obs


def reward(frame, consts, obs, action):
    return faucet_reward(frame, consts, obs[:, 4:7] + GRIP_OFFSET)


PORT = TaskPort(
    reads=faucet_reads("handleStartOpen"),
    constants=FAUCET_CONSTANTS,
    objects=faucet_objects,
    reward=reward,
)
