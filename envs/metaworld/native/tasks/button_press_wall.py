"""button-press-wall-v3 (`SawyerButtonPressWallEnvV3`): push the button in from the front, reaching
around a wall; success when its tip is within 3 cm (along y) of the `hole` site."""

import jax.numpy as jnp

from ..port import TaskPort
from ..rewards import hamacher_product
from ._buttons_and_mugs import BUTTON_READS, button_constants, button_objects, button_terms


def reward(frame, consts, obs, action):
    tcp_to_obj, obj_to_target, near_button, button_pressed = button_terms(
        frame, consts, obs, near_bound=0.01, press_margin=consts.obj_to_target_init[:, 0]
    )
    opened = obs[:, 3]
    far = 2 * hamacher_product((1 - opened) / 2, near_button)  # reach with the gripper closed
    near = 2 + 2 * (1 + opened) + 4 * button_pressed**2  # at the button: open it and press
    return jnp.where(tcp_to_obj > 0.07, far, near), obj_to_target <= 0.03


PORT = TaskPort(
    reads=BUTTON_READS,
    constants=button_constants(1),
    objects=button_objects((0.0, -0.193, 0.0)),
    reward=reward,
)
