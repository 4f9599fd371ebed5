"""Frames of Meta-World envs: MuJoCo's offscreen renderer over the host envs' own MjData.

Both backends keep metaworld's env objects on the host (`official.HostEnvs`, `native.host.NativeHost`), so a
frame is what metaworld itself would draw: the same model, the same data, the same cameras. Rendering needs
an OpenGL context without a display: `MUJOCO_GL=egl` (Mesa's software EGL on a CPU machine, the GPU's on a
GPU machine) or `osmesa`, chosen before MuJoCo is first imported (`mtrl.video.prefer_headless_gl`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
"""The cameras every Meta-World v3 scene defines."""
UPSIDE_DOWN = frozenset({"corner", "corner2", "corner3", "corner4"})
"""Cameras mounted rolled by half a turn in metaworld's scene files: their images are turned back upright."""


class MujocoFrames:
    """Renders chosen envs of a host batch; one `mujoco.Renderer` (and GL context) per env, made when first
    asked for and freed by `close`."""

    def __init__(self, host_envs: Sequence, width: int, height: int, camera: str):
        if camera not in CAMERAS:
            raise ValueError(f"unknown Meta-World camera {camera!r}; valid: {', '.join(CAMERAS)}")
        self.host_envs, self.width, self.height, self.camera = host_envs, width, height, camera
        self._renderers: dict[int, object] = {}

    def __call__(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 `[len(indices), height, width, 3]`: the current state of each env in `indices`."""
        frames = np.empty((len(indices), self.height, self.width, 3), np.uint8)
        for row, index in enumerate(indices):
            renderer = self._renderer(index)
            renderer.update_scene(self.host_envs[index].data, camera=self.camera)
            frames[row] = renderer.render()
        return frames[:, ::-1, ::-1] if self.camera in UPSIDE_DOWN else frames

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def _renderer(self, index: int):
        if index not in self._renderers:
            import mujoco

            check_headless_context(mujoco)
            self._renderers[index] = mujoco.Renderer(self.host_envs[index].model, self.height, self.width)
        return self._renderers[index]


def check_headless_context(mujoco) -> None:
    """Fail with the fix, not a GLFW crash, when MuJoCo was imported for a display that is not there."""
    import os

    context = getattr(mujoco.gl_context, "GLContext", None)
    windowed = context is None or context.__module__.startswith("mujoco.glfw")
    if windowed and not os.environ.get("DISPLAY"):
        raise RuntimeError(
            f"MuJoCo was imported with MUJOCO_GL={os.environ.get('MUJOCO_GL') or '(unset: glfw)'} and "
            "there is no display; set MUJOCO_GL=egl (or osmesa) before anything imports mujoco"
        )


def reuse(
    frames: MujocoFrames | None, host_envs: Sequence, width: int, height: int, camera: str
) -> MujocoFrames:
    """`frames` if it renders at these settings, else a new one (freeing the old one's GL contexts)."""
    if frames is not None and (frames.width, frames.height, frames.camera) == (width, height, camera):
        return frames
    if frames is not None:
        frames.close()
    return MujocoFrames(host_envs, width, height, camera)


def render_host_envs(
    env, state, envs: Sequence[int], *, width: int = 320, height: int = 240, camera: str = "corner"
) -> np.ndarray:
    """The `render` method of both Meta-World backends: uint8 `[len(envs), height, width, 3]`, the envs `envs`
    (batch indices) as they are now. The physics is on the host, so this is always the latest `state`'s
    scene; `camera` is one of `CAMERAS`. The renderers live on `env._frames` until `env.close()`."""
    del state
    env._frames = reuse(env._frames, env.host.envs, width, height, camera)
    return env._frames(envs)
