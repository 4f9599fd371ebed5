"""faucet-close-v3 (`SawyerFaucetCloseEnvV3`): turn the faucet handle closed; success when the handle is
within 7 cm of the goal."""

from ..port import TaskPort
from ._handles_and_faucets import FAUCET_CONSTANTS, faucet_objects, faucet_reads, faucet_reward


def reward(frame, consts, obs, action):
    return faucet_reward(frame, consts, obs[:, 4:7])


PORT = TaskPort(
    reads=faucet_reads("handleStartClose"),
    constants=FAUCET_CONSTANTS,
    objects=faucet_objects,
    reward=reward,
)
