"""Videos of a policy: greedy episodes played step by step, a frame per step from the env's own renderer,
written as one MP4 and one GIF per task.

Frames come from the host (MuJoCo's offscreen renderer, minigrid's drawing), so the episodes cannot run as
one compiled rollout: they are a Python loop over the env's jitted `reset`/`step` and a jitted greedy
`act`, which is why only a few episodes per task are filmed. Each env of the batch keeps its own episode
count (MiniGrid episodes end at different steps), and a strip along the bottom of every frame turns from
grey to green once the episode has succeeded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from mtrl.types import Env

MAX_FPS = 20
"""Frames per second of the videos at most: a faster env is filmed every k-th step, played in real time."""
GIF_MAX_WIDTH = 240
STRIP = 4
"""Height in pixels of the success strip along the bottom of each frame."""
_GREY, _GREEN = np.array([128, 128, 128], np.uint8), np.array([40, 200, 60], np.uint8)


def prefer_headless_gl() -> None:
    """Let MuJoCo render without a display: on Linux with no `DISPLAY` and no `MUJOCO_GL` chosen, pick EGL
    (Mesa renders it in software where there is no GPU). Only effective before MuJoCo is imported."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and "mujoco" not in sys.modules:
        os.environ.setdefault("MUJOCO_GL", "egl")


@dataclasses.dataclass
class Recording:
    """One filmed env: its task, the frames of each episode, and how each episode went."""

    task: str
    episodes: list[list[np.ndarray]] = dataclasses.field(default_factory=list)
    successes: list[bool] = dataclasses.field(default_factory=list)
    returns: list[float] = dataclasses.field(default_factory=list)


def check_renderable(env: Env) -> None:
    if env.render_fps is None:
        raise ValueError(
            f"{env.spec.name} has no renderer; videos are made of Meta-World and MiniGrid runs (any backend)"
        )


def pick_envs(env: Env, tasks: Sequence[str] | None) -> list[int]:
    """The first env of each task in `tasks` (all tasks when None), checking the names."""
    names = env.spec.task_names
    unknown = [t for t in tasks or () if t not in names]
    if unknown:
        raise ValueError(f"unknown task {unknown[0]!r} for {env.spec.name}; valid: {', '.join(names)}")
    chosen = names if not tasks else [t for t in names if t in tasks]
    return [names.index(task) * env.spec.envs_per_task for task in chosen]


def frame_every(env: Env) -> int:
    """Film every k-th step so that the video plays in real time at no more than `MAX_FPS`."""
    return max(1, round(env.render_fps / MAX_FPS))


def record(
    env: Env,
    act,
    agent_state,
    key: jax.Array,
    envs: Sequence[int],
    episodes: int,
    every: int = 1,
    **render_options,
) -> list[Recording]:
    """Play until each env in `envs` (batch indices) has finished `episodes` episodes, acting greedily with
    `act(agent_state, obs, task_id, key)`, and film them: the first state of an episode, then every
    `every`-th step. A step that ends an episode shows the next one's first state (same-step auto-reset),
    so an episode's last state is not in its video."""
    check_renderable(env)
    if episodes < 1:
        raise ValueError(f"episodes to film must be >= 1, got {episodes}")
    recordings = {i: Recording(env.spec.task_names[i // env.spec.envs_per_task]) for i in envs}
    reset_key, key = jax.random.split(key)
    state, step = env.reset(reset_key)
    frames_at = {i: 0 for i in envs}  # steps into the current episode
    total = {i: 0.0 for i in envs}
    succeeded = {i: False for i in envs}

    def film(indices):
        for i, frame in zip(indices, env.render(state, indices, **render_options), strict=True):
            recordings[i].episodes[-1].append(_with_strip(frame, succeeded[i]))

    for recording in recordings.values():
        recording.episodes.append([])
    film(list(envs))
    for _ in range(episodes * env.spec.episode_length):
        live = [i for i in envs if len(recordings[i].successes) < episodes]
        if not live:
            break
        key, act_key = jax.random.split(key)
        state, step = env.step(state, act(agent_state, step.obs, step.task_id, act_key))
        reward, success = np.asarray(step.reward), np.asarray(step.success)
        ended = np.asarray(step.terminated) | np.asarray(step.truncated)
        to_film = []
        for i in live:
            total[i] += float(reward[i])
            succeeded[i] |= bool(success[i])
            frames_at[i] += 1
            if ended[i]:
                recordings[i].successes.append(succeeded[i])
                recordings[i].returns.append(total[i])
                total[i], succeeded[i], frames_at[i] = 0.0, False, 0
                if len(recordings[i].successes) == episodes:
                    continue
                recordings[i].episodes.append([])
            if frames_at[i] % every == 0:
                to_film.append(i)
        if to_film:
            film(to_film)
    return [recordings[i] for i in envs]


def _with_strip(frame: np.ndarray, succeeded: bool) -> np.ndarray:
    frame = np.array(frame, np.uint8)
    frame[-STRIP:] = _GREEN if succeeded else _GREY
    return frame


def write(recordings: Sequence[Recording], out_dir: Path, fps: float) -> dict[str, Path]:
    """`<task>.mp4` and `<task>.gif` (every episode one after another) and `episodes.json` (success and
    return of each filmed episode) in `out_dir`, which must not exist yet; returns the MP4 of each task."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=False)
    videos = {}
    for recording in recordings:
        frames = [_even(frame) for episode in recording.episodes for frame in episode]
        videos[recording.task] = write_mp4(out_dir / f"{recording.task}.mp4", frames, fps)
        write_gif(out_dir / f"{recording.task}.gif", frames, fps)
    summary = {r.task: {"success": r.successes, "return": r.returns} for r in recordings}
    (out_dir / "episodes.json").write_text(json.dumps({"fps": fps, "tasks": summary}, indent=1) + "\n")
    return videos


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: pad the last row/column by repeating it."""
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def write_mp4(path: Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """H.264 MP4 (yuv420p: plays in browsers and W&B) through the ffmpeg binary of `imageio-ffmpeg`."""
    import imageio_ffmpeg

    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="error",
    )
    with warnings.catch_warnings():  # JAX warns at any fork; this one is fork + exec of ffmpeg, which is safe
        warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
        writer.send(None)  # start ffmpeg
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def write_gif(path: Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """An endlessly looping GIF preview (Pillow), shrunk by a whole factor to at most `GIF_MAX_WIDTH` pixels
    wide: with a 256-colour palette per frame a full-size GIF of a rendered scene is ~50× its MP4. GIF
    delays are whole hundredths of a second."""
    from PIL import Image

    factor = -(-frames[0].shape[1] // GIF_MAX_WIDTH)
    images = [Image.fromarray(frame).reduce(factor) for frame in frames]
    duration = max(20, round(1000 / fps / 10) * 10)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0, optimize=False)
    return path


def new_video_dir(run_dir: Path, step: int) -> Path:
    """`videos/step-<step>` in the run directory, or `step-<step>-2`, ... when that exists: earlier videos
    are never overwritten."""
    base = Path(run_dir) / "videos" / f"step-{step}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
