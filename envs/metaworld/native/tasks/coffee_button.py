"""coffee-button-v3 (`SawyerCoffeeButtonEnvV3`): push the coffee machine's button in; success when the
`buttonStart` site is within 2 cm (along y) of the goal."""

import jax.numpy as jnp

from ..port import Read, TaskPort
from ._buttons_and_mugs import button_reward, button_terms, press_constants

MAX_DIST = 0.03  # metaworld's `max_dist`, fixed at construction: the button's travel to the goal


def objects(frame):
    quat = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0, 0.0], jnp.float32), (frame.button.shape[0], 4))
    return frame.button, quat


def reward(frame, consts, obs, action):
    tcp_to_obj, obj_to_target, near_button, button_pressed = button_terms(
        frame, consts, obs, near_bound=0.05, press_margin=MAX_DIST
    )
    tcp_closed = jnp.maximum(obs[:, 3], 0.0)  # metaworld's name; it is the gripper's *opening*
    reward = button_reward(
        tcp_closed, near_button, button_pressed, tcp_to_obj, reach_gate=0.05, grip_weight=2
    )
    return reward, obj_to_target <= 0.02


PORT = TaskPort(
    reads={"button": Read("site_pos", "buttonStart"), "press_q": Read("qpos", "goal_slidey")},
    constants=press_constants(1, "goal_slidey"),
    objects=objects,
    reward=reward,
)
