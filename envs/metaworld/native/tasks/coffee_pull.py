"""coffee-pull-v3 (`SawyerCoffeePullEnvV3`): grasp the mug under the coffee machine and pull it to the
goal; success when it is within 7 cm of the goal."""

from ..port import TaskPort
from ._buttons_and_mugs import MUG_CONSTANTS, MUG_READS, mug_objects, mug_reward

PORT = TaskPort(reads=MUG_READS, constants=MUG_CONSTANTS, objects=mug_objects, reward=mug_reward)
