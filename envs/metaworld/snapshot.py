"""Save and restore the state of metaworld env objects, so a host-stepped run resumes exactly.

What a metaworld env's next step depends on is (1) MuJoCo's integration state (`mjSTATE_INTEGRATION`:
positions, velocities, mocap, controls, the solver's warm start, time; "everything needed to reproduce the
next step exactly", in MuJoCo's words), (2) the model positions that resets move to place objects and
goals, and (3) the env's own numeric attributes (path length, previous frame, target, initial object
positions, reward constants set at reset, ...). All are plain arrays, so a snapshot is a dict of NumPy
arrays that orbax stores like any other: no pickling.
"""

from __future__ import annotations

import mujoco
import numpy as np

INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION
# MuJoCo's instability warnings: each time one fires, MuJoCo resets the simulation and counts it.
UNSTABLE = [int(w) for w in (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                             mujoco.mjtWarning.mjWARN_BADQACC)]  # fmt: skip


def unstable_resets(data) -> int:
    """How often MuJoCo has reset this simulation for NaN/huge positions, velocities or accelerations.

    metaworld 3.1.1 declares an instability flag (`_did_see_sim_exception`) that nothing sets: MuJoCo does
    not raise, it resets the data and counts a warning, and the env steps on from there. The count goes
    back to zero at every env reset (`mj_resetData`).
    """
    return int(data.warning.number[UNSTABLE].sum())


# Model fields that metaworld's resets move to place objects and goals (e.g. a drawer's body_pos).
MODEL_FIELDS = ("body_pos", "body_quat", "site_pos", "site_quat", "geom_pos", "geom_quat")


def snapshot(env) -> dict[str, np.ndarray]:
    """One env's MuJoCo integration state and every numeric attribute, as arrays."""
    physics = np.empty(mujoco.mj_stateSize(env.model, INTEGRATION))
    mujoco.mj_getState(env.model, env.data, physics, INTEGRATION)
    model = {name: getattr(env.model, name).copy() for name in MODEL_FIELDS}
    attributes = {}
    for name, value in vars(env).items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            attributes[name] = value.copy()
        elif isinstance(value, (bool, int, float, np.number, np.bool_)):
            attributes[name] = np.asarray(value)
    warnings = env.data.warning.number.copy()
    return {"physics": physics, "model": model, "attributes": attributes, "warnings": warnings}


def restore(env, saved: dict[str, np.ndarray]) -> None:
    """Put `env` (reset at least once, so it has all its attributes) into the `saved` state.

    Arrays are written in place, which keeps attributes that are views of MjData (e.g. the pads'
    initial positions) views; scalars keep the type the env gives them.
    """
    for name, value in saved["attributes"].items():
        value = np.asarray(value)
        current = getattr(env, name, None)
        if isinstance(current, np.ndarray) and current.shape == value.shape:
            current[...] = value
        elif isinstance(current, (bool, int, float, np.number, np.bool_)):
            setattr(env, name, type(current)(value.item()))
        else:
            setattr(env, name, value.copy() if value.ndim else value.item())
    for name in MODEL_FIELDS:
        getattr(env.model, name)[...] = saved["model"][name]
    for i, number in enumerate(np.asarray(saved["warnings"])):
        env.data.warning[i].number = int(number)
    physics = np.asarray(saved["physics"], np.float64)
    mujoco.mj_setState(env.model, env.data, physics, INTEGRATION)
    mujoco.mj_forward(env.model, env.data)  # derived quantities (positions, contacts) as the step left them
    # mj_forward also moves the solver's warm start; the next step must begin from the saved one.
    mujoco.mj_setState(env.model, env.data, physics, INTEGRATION)
