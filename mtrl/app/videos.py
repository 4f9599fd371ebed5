"""Film a run's policy: `mtrl evaluate RUN_DIR --video` and `--loop.video-every-steps-per-task` in training.

The filmed env is built apart from the training and evaluation envs (one env per task, goals in order:
episode k of a task plays its goal k), so filming changes no run's numbers. With vmapped seeds the first
seed is filmed. Files go to `RUN_DIR/videos/step-<step>/` (`mtrl.video.write`), never over earlier ones,
and the MP4s are logged to the run's W&B run as `video/<task>`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
from rich.console import Console
from rich.table import Table

from mtrl import envs, video
from mtrl.app import wiring
from mtrl.app.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class VideoRequest:
    tasks: tuple[str, ...] | None = None
    """Tasks to film (None: every task of the benchmark)."""
    episodes: int = 1
    """Episodes per task, one after another in the task's video."""
    camera: str | None = None
    """Meta-World only: the scene camera (default corner); see `envs.metaworld.render.CAMERAS`."""


def check_filmable(config: TrainConfig) -> None:
    """Refuse, in one line, runs that cannot be filmed: meta-RL agents and envs without a renderer. Then
    let MuJoCo render headless if nothing has imported it yet (`mtrl.video.prefer_headless_gl`)."""
    if wiring.is_meta(config.agent_name):
        raise ValueError(
            f"{config.agent_name} is a meta-RL agent: its policy acts only after adapting, which videos do "
            "not film; film a multi-task agent's run"
        )
    if config.env.name in envs.TOY_ENVS:
        raise ValueError(
            f"{config.env.name} has no renderer; videos are made of Meta-World and MiniGrid runs"
        )
    video.prefer_headless_gl()


class Filmer:
    """Films a run's agent state on demand; builds its env and compiles `act` once, on the first call."""

    def __init__(self, config: TrainConfig, request: VideoRequest = VideoRequest()):
        check_filmable(config)
        self.config, self.request = config, request
        self._env = None
        self._act = None

    def env(self):
        if self._env is None:
            config = self.config
            env = wiring.make_env(config.env, config.seed, envs_per_task=1, goal_sampling="sequential")
            video.check_renderable(env)
            video.pick_envs(env, self.request.tasks)  # a bad task name fails before any episode is played
            agent = wiring.make_agent(self.config)
            self._env = env
            self._act = jax.jit(lambda state, obs, task_id, key: agent.act(state, obs, task_id, key, True))
        return self._env

    def film(self, agent_state, run_dir: Path, step: int) -> tuple[Path, list[video.Recording]]:
        """Film `agent_state` (the run's, with a leading seed axis when it has vmapped seeds) into a new
        `videos/step-<step>` directory; returns it and the recordings."""
        env = self.env()
        if self.config.num_seeds > 1:
            agent_state = jax.tree.map(lambda x: x[0], agent_state)
        options = {} if self.request.camera is None else {"camera": self.request.camera}
        recordings = video.record(
            env,
            self._act,
            agent_state,
            jax.random.key(self.config.seed),
            video.pick_envs(env, self.request.tasks),
            self.request.episodes,
            video.frame_every(env),
            **options,
        )
        out = video.new_video_dir(run_dir, step)
        video.write(recordings, out, env.render_fps / video.frame_every(env))
        return out, recordings

    def close(self) -> None:
        if self._env is not None:
            self._env.close()


def print_recordings(console: Console, out: Path, recordings: list[video.Recording]) -> None:
    table = Table(title=f"Filmed episodes (greedy actions) in {out}")
    for column in ("task", "success", "return", "files"):
        table.add_column(column, justify="left" if column in ("task", "files") else "right")
    for r in recordings:
        table.add_row(
            r.task,
            " ".join("yes" if s else "no" for s in r.successes),
            " ".join(f"{x:.2f}" for x in r.returns),
            f"{r.task}.mp4, {r.task}.gif",
        )
    console.print(table)


def wandb_videos(out: Path, recordings: list[video.Recording]) -> dict[str, Path]:
    """The MP4 of each filmed task under its W&B key, `video/<task>`."""
    return {f"video/{r.task}": out / f"{r.task}.mp4" for r in recordings}
