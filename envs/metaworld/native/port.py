"""What a task port declares: the raw arrays it reads, the per-episode constants it needs, and its math.

A `TaskPort` is the whole difference between two Meta-World tasks on the `native` backend. The host
reads the declared arrays from MuJoCo after each step (`reads`) and the declared env attributes after
each reset (`constants`); `objects` and `reward` then run in JAX on the whole batch of that task's envs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

READ_KINDS = {  # kind -> (MjData field, values per element)
    "body_pos": ("xpos", 3),
    "body_quat": ("xquat", 4),
    "body_mat": ("xmat", 9),
    "site_pos": ("site_xpos", 3),
    "site_mat": ("site_xmat", 9),
    "geom_pos": ("geom_xpos", 3),
    "geom_mat": ("geom_xmat", 9),
    "qpos": ("qpos", 1),
    "qvel": ("qvel", 1),
    "touching": ("contact", 1),  # 1.0 where both finger pads push on geom `name` (touching_object)
}
_OBJECT_TYPES = {"body": "mjOBJ_BODY", "site": "mjOBJ_SITE", "geom": "mjOBJ_GEOM"}


@dataclasses.dataclass(frozen=True)
class Read:
    """One array read from MjData after every step, e.g. `Read("geom_mat", "objGeom")`.

    For "qpos"/"qvel", `name` is a joint name and `size` the number of coordinates read from that
    joint's first address (1 for hinge and slide joints, 7 for a free joint's qpos). "touching" is
    metaworld's `touching_object(geom)`: both pads' contacts with the geom carry positive force.
    """

    kind: str
    name: str
    size: int = 1

    def __post_init__(self):
        if self.kind not in READ_KINDS:
            raise ValueError(f"unknown read kind {self.kind!r}; valid: {', '.join(READ_KINDS)}")

    @property
    def width(self) -> int:
        field, per_element = READ_KINDS[self.kind]
        return self.size if field in ("qpos", "qvel") else per_element

    def indices(self, model) -> np.ndarray:
        """Flat indices into `getattr(data, field).ravel()` for this read on `model`."""
        import mujoco

        field, per_element = READ_KINDS[self.kind]
        if field == "contact":
            geoms = (self.name, "leftpad_geom", "rightpad_geom")
            return np.array([model.geom(name).id for name in geoms])
        if field in ("qpos", "qvel"):
            joint = model.joint(self.name)
            start = int(joint.qposadr[0] if field == "qpos" else joint.dofadr[0])
            return np.arange(start, start + self.size)
        object_type = getattr(mujoco.mjtObj, _OBJECT_TYPES[self.kind.split("_")[0]])
        index = mujoco.mj_name2id(model, object_type, self.name)
        if index < 0:
            raise ValueError(f"{self.kind} {self.name!r} is not in model {model.names[:40]!r}...")
        return np.arange(index * per_element, (index + 1) * per_element)


@dataclasses.dataclass(frozen=True)
class Constant:
    """A per-episode value captured on the host right after reset: `get(env)` -> `size` floats."""

    size: int
    get: Callable[[Any], Any]


def attribute(name: str, size: int = 3) -> Constant:
    """A constant that is simply `env.<name>` after reset (e.g. `obj_init_pos`)."""
    return Constant(size, lambda env: getattr(env, name))


class Frame(dict):
    """Named arrays [envs, width] of one task's envs; `frame.tcp` is `frame["tcp"]`."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"frame has no {name!r}; it has {', '.join(self)}") from None


@dataclasses.dataclass(frozen=True)
class TaskPort:
    """One task on the native backend.

    reads: extra per-step reads by name, on top of `COMMON_READS` (hand, fingertips, claws, pads).
    constants: extra per-episode constants by name, on top of `COMMON_CONSTANTS`.
    objects(frame) -> (positions [envs, 3k], quaternions [envs, 4k]): metaworld's
        `_get_pos_objects` / `_get_quat_objects` (k objects, k <= 2; quaternions may be empty).
    reward(frame, consts, obs, action) -> (reward [envs], success [envs] bool): metaworld's
        `evaluate_state` with reward version v2; `obs` is the clipped 39-dim observation that metaworld
        passes to `evaluate_state`, `action` the unclipped action as given to `step`.
    latched, latch: for values metaworld computes on an episode's first step and keeps (e.g.
        bin-picking's initial object-to-target distance): their sizes by name, and
        `latch(frame, consts, obs, action) -> {name: [envs, size]}`, evaluated on every step but stored
        into `consts` only on the first step of an episode, before `reward` sees them.
    """

    reads: Mapping[str, Read]
    constants: Mapping[str, Constant]
    objects: Callable
    reward: Callable
    latched: Mapping[str, int] = dataclasses.field(default_factory=dict)
    latch: Callable | None = None


COMMON_READS = {
    "hand": Read("body_pos", "hand"),
    "right_finger": Read("site_pos", "rightEndEffector"),
    "left_finger": Read("site_pos", "leftEndEffector"),
    "right_claw": Read("body_pos", "rightclaw"),
    "left_claw": Read("body_pos", "leftclaw"),
    "left_pad": Read("body_pos", "leftpad"),
    "right_pad": Read("body_pos", "rightpad"),
}

COMMON_CONSTANTS = {
    "target_pos": attribute("_target_pos"),  # also the observed goal (`_get_pos_goal`)
    "init_tcp": attribute("init_tcp"),
}
# Not constants: metaworld's `init_left_pad`/`init_right_pad` come from `get_body_com`, which returns a
# view into `data.xpos`, so they always equal the *current* pads; ports read `frame.left_pad` and
# `frame.right_pad` instead (the host checks the aliasing still holds).
