"""button-press-topdown-wall-v3 (`SawyerButtonPressTopdownWallEnvV3`): press the button down from above,
past a wall; success when its tip is within 2.4 cm (in height) of the `hole` site."""

import jax.numpy as jnp

from ..port import TaskPort
from ._buttons_and_mugs import BUTTON_READS, button_constants, button_objects, button_reward, button_terms


def reward(frame, consts, obs, action):
    tcp_to_obj, obj_to_target, near_button, button_pressed = button_terms(
        frame, consts, obs, near_bound=0.01, press_margin=consts.obj_to_target_init[:, 0]
    )
    tcp_closed = jnp.maximum(obs[:, 3], 0.0)  # metaworld's name; it is the gripper's *opening*
    reward = button_reward(
        tcp_closed, near_button, button_pressed, tcp_to_obj, reach_gate=0.03, grip_weight=5
    )
    return reward, obj_to_target <= 0.024


PORT = TaskPort(
    reads=BUTTON_READS,
    constants=button_constants(2),
    objects=button_objects((0.0, 0.0, 0.193)),
    reward=reward,
)
