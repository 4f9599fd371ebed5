"""Policy videos: headless frames of real Meta-World and MiniGrid envs, per-env episode filming, the files.

The Meta-World frames are drawn by MuJoCo with EGL and no display (what CI has: `.ci/run` installs Mesa's
EGL), and the native backend's frames are checked against metaworld's own envs stepped with the same
actions. MiniGrid frames are checked against Farama minigrid's `get_frame`. The command-line path
(`mtrl evaluate --video`, `--loop.video-every-steps-per-task`) is tested in test_cli.py on a trained run.
"""

import json

import gymnasium as gym
import imageio_ffmpeg
import jax
import jax.numpy as jnp
import minigrid  # noqa: F401  (registers the MiniGrid envs with gymnasium)
import numpy as np
import pytest
from mtrl.envs import make
from mtrl.envs.minigrid.render import world_frame
from PIL import Image

from mtrl import video
from mtrl.logger import RunLogger, WandbConfig


def _moving_hand(env, steps: int):
    """Reset MT1 reach to its first goal and push the hand in one direction, rendering before and after."""
    state, _ = env.reset(jax.random.key(0))
    before = env.render(state, [0])[0]
    action = jnp.array([[1.0, 0.5, 0.0, -1.0]])
    for _ in range(steps):
        state, _ = env.step(state, action)
    return before, env.render(state, [0])[0]


def test_metaworld_frames_render_headless_change_with_the_scene_and_equal_metaworlds_own():
    frames = {}
    for backend in ("native", "official"):
        env = make("MT1", task="reach-v3", backend=backend, goal_sampling="sequential")
        frames[backend] = _moving_hand(env, 20)
        env.close()
    before, after = frames["native"]
    assert before.shape == (240, 320, 3) and before.dtype == np.uint8
    for frame in (before, after):  # a drawn scene, not a blank or single-colour buffer
        assert frame.std() > 20 and len(np.unique(frame.reshape(-1, 3), axis=0)) > 1000
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=-1) > 30
    assert 0.005 < changed.mean() < 0.5  # the arm moved; the table, floor and walls did not
    # same physics, same model: the native backend's scene is metaworld's own, pixel for pixel
    for native, official in zip(frames["native"], frames["official"], strict=True):
        assert np.abs(native.astype(int) - official.astype(int)).max() <= 1


def test_metaworld_cameras_are_checked_and_upright():
    env = make("MT1", task="reach-v3", backend="native")
    state, _ = env.reset(jax.random.key(0))
    with pytest.raises(ValueError, match="unknown Meta-World camera 'front'; valid: corner, corner2"):
        env.render(state, [0], camera="front")
    corner = env.render(state, [0], camera="corner", width=160, height=120)[0]
    assert corner.shape == (120, 160, 3)
    # upright: the plain backdrop behind the table fills the top rows; the tiled floor is at the bottom
    backdrop = np.abs(corner.astype(int) - corner[0, 0].astype(int)).max(axis=-1) <= 3
    assert backdrop[:10].mean() > 0.8 and backdrop[-10:].mean() < 0.2
    env.close()


def test_minigrid_frames_are_minigrids_own_drawing():
    farama = gym.make("MiniGrid-DoorKey-5x5-v0").unwrapped
    farama.reset(seed=3)
    for action in (0, 2, 2, 1, 2, 3, 5):  # turn, walk, pick up the key, toggle: the door's state changes
        farama.step(action)
        ours = world_frame(farama.grid.encode(), farama.agent_pos, farama.agent_dir)
        np.testing.assert_array_equal(ours, farama.get_frame(highlight=False))


def test_the_minigrid_port_draws_each_task_at_its_own_size():
    env = make("MiniGrid-MT3")
    state, _ = env.reset(jax.random.key(1))
    frames = env.render(state, [0, 1, 2], tile_size=8)
    sizes = [(task.height * 8, task.width * 8, 3) for task in env.tasks]
    assert [f.shape for f in frames] == sizes and len(set(sizes)) > 1


def test_each_env_is_filmed_for_its_own_episodes():
    """MiniGrid tasks end at different steps: a policy that only turns left never finishes, so each filmed
    episode lasts its task's max_steps (first frame + every step but the last, which shows the next reset)."""
    env = make("MiniGrid-MT3")
    turn_left = lambda state, obs, task_id, key: jnp.zeros(env.spec.num_envs, jnp.int32)  # noqa: E731
    recordings = video.record(env, turn_left, None, jax.random.key(0), [0, 2], episodes=2, tile_size=4)
    assert [r.task for r in recordings] == [env.spec.task_names[0], env.spec.task_names[2]]
    for recording, task in zip(recordings, (env.tasks[0], env.tasks[2]), strict=True):
        assert [len(frames) for frames in recording.episodes] == [task.max_steps] * 2
        assert recording.successes == [False, False] and recording.returns == [0.0, 0.0]
        strip = recording.episodes[0][0][-video.STRIP :]
        assert (strip == 128).all()  # grey: not succeeded
    every = video.record(env, turn_left, None, jax.random.key(0), [1], episodes=1, every=5, tile_size=4)
    assert len(every[0].episodes[0]) == len(range(0, env.tasks[1].max_steps, 5))


def test_every_env_declares_whether_it_renders():
    toy = make("toy")
    assert toy.render_fps is None
    toy.close()  # every env can be closed, pure-JAX ones with nothing to release
    for backend in ("jax", "farama"):  # minigrid's pace; the same world drawn by both backends' renderers
        env = make("MiniGrid-MT3", backend=backend)
        state, _ = env.reset(jax.random.key(0))
        [frame] = env.render(state, [1], tile_size=4)
        assert env.render_fps == 10 and frame.shape == (env.tasks[1].height * 4, env.tasks[1].width * 4, 3)
        env.close()
    meta_world = make("MT1", task="reach-v3")
    assert meta_world.render_fps == 80  # metaworld's 1 / (frame_skip × timestep): films play in real time
    meta_world.close()


def test_filming_refuses_what_it_cannot_film():
    toy = make("toy")
    with pytest.raises(ValueError, match="toy has no renderer; videos are made of Meta-World and MiniGrid"):
        video.record(toy, None, None, jax.random.key(0), [0], 1)
    grid = make("MiniGrid-MT3")
    with pytest.raises(ValueError, match="unknown task 'reach-v3' for MiniGrid-MT3; valid: MiniGrid-"):
        video.pick_envs(grid, ["reach-v3"])
    assert video.pick_envs(grid, [grid.spec.task_names[1]]) == [1]
    with pytest.raises(ValueError, match="episodes to film must be >= 1, got 0"):
        video.record(grid, None, None, jax.random.key(0), [0], 0)


def _square_frames(n: int) -> list[np.ndarray]:
    frames = []
    for t in range(n):
        frame = np.full((48, 64, 3), 30, np.uint8)
        frame[10:26, 2 + 3 * t : 18 + 3 * t] = (250, 200, 40)
        frames.append(frame)
    return frames


@pytest.mark.filterwarnings("ignore:os.fork")  # reading the MP4 back starts ffmpeg: fork + exec is safe
def test_videos_are_playable_mp4_and_gif_and_never_overwritten(tmp_path):
    recordings = [video.Recording("walk", [_square_frames(6), _square_frames(4)], [True, False], [1.5, 0.25])]
    out = video.new_video_dir(tmp_path, 1000)
    assert out == tmp_path / "videos" / "step-1000"
    paths = video.write(recordings, out, fps=10)
    assert paths == {"walk": out / "walk.mp4"}
    reader = imageio_ffmpeg.read_frames(str(out / "walk.mp4"))
    meta = next(reader)
    decoded = [np.frombuffer(f, np.uint8).reshape(48, 64, 3) for f in reader]
    assert meta["size"] == (64, 48) and meta["fps"] == 10 and len(decoded) == 10
    originals = _square_frames(6) + _square_frames(4)
    errors = [np.abs(d.astype(int) - o.astype(int)).mean() for d, o in zip(decoded, originals, strict=True)]
    assert max(errors) < 6  # lossy H.264, but the same pictures
    gif = Image.open(out / "walk.gif")
    assert gif.n_frames == 10 and gif.info["duration"] == 100 and gif.info["loop"] == 0
    assert json.loads((out / "episodes.json").read_text())["tasks"]["walk"] == {
        "success": [True, False],
        "return": [1.5, 0.25],
    }
    # a second film at the same step goes beside the first
    assert video.new_video_dir(tmp_path, 1000) == tmp_path / "videos" / "step-1000-2"
    with pytest.raises(FileExistsError):
        video.write(recordings, out, fps=10)


def test_videos_reach_an_offline_wandb_run(tmp_path):
    out = video.new_video_dir(tmp_path, 5)
    video.write([video.Recording("walk", [_square_frames(5)], [True], [1.0])], out, fps=10)
    logger = RunLogger(tmp_path, {}, WandbConfig(mode="offline"), name="video-test")
    logger.log_videos(5, {"video/walk": out / "walk.mp4"})
    logger.close()
    [run] = (tmp_path / "wandb").glob("offline-run-*")
    assert list(run.glob("files/media/videos/video/walk_*.mp4"))
