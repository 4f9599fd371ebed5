"""Step-for-step comparison of the `native` Meta-World backend with metaworld's own env.

Used by the parity tests and, from the command line, while porting a task:

    python tests/native_parity.py reach-v3 pick-place-v3 --policy random scripted

For one task (as MT1, goals visited in order 0, 1, 2, ...), the reference is a metaworld env driven
with metaworld's public API only: `set_task`, `reset`, `step`. Its actions (uniform random, or
metaworld's scripted expert policy acting on the reference obs) are then replayed through the native
env in one jitted scan, and every step's obs, final obs, reward, success and truncation are compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import jax
import numpy as np

EPISODE = 500
TOLERANCE = 1e-5  # float32 rounding of float64 values of order 1-10
# Metaworld's rewards are ill-conditioned in places: caging margins such as |pad_y - obj_init_y - 0.05|
# can come arbitrarily close to 0, and funnels such as 0.02 log(r - 0.01) are steep near their throat.
# There the float32 rounding of the positions the host sends (up to ~3e-8) moves the reward by up to
# ~2e-4. So each reference step is also scored by metaworld's own `evaluate_state` on the same state
# rounded to float32 (MjData positions, orientations and the env's float attributes), and a step passes
# if our reward is within TOLERANCE of either.
ROUNDED_FIELDS = ("qpos", "qvel", "xpos", "xquat", "xmat", "site_xpos", "site_xmat", "geom_xpos", "geom_xmat")


def reward_of_rounded_state(env, obs: np.ndarray, action: np.ndarray) -> float:
    """metaworld's reward for the current state with every input rounded to float32; state restored."""
    data = env.data
    saved_data = {name: getattr(data, name).copy() for name in ROUNDED_FIELDS}
    saved_attrs = {
        name: value.copy() if isinstance(value, np.ndarray) else value
        for name, value in vars(env).items()
        if (isinstance(value, np.ndarray) and value.dtype == np.float64) or isinstance(value, float)
    }
    try:
        for name in ROUNDED_FIELDS:
            array = getattr(data, name)
            array[...] = array.astype(np.float32)
        for name, value in saved_attrs.items():
            if isinstance(value, np.ndarray):
                getattr(env, name)[...] = value.astype(np.float32)
            else:
                setattr(env, name, float(np.float32(value)))
        reward, _ = env.evaluate_state(obs.astype(np.float32).astype(np.float64), action)
    finally:
        for name, value in saved_data.items():
            getattr(data, name)[...] = value
        for name, value in saved_attrs.items():
            if isinstance(value, np.ndarray):
                getattr(env, name)[...] = value
            else:
                setattr(env, name, value)
    return float(reward)


def reference_rollout(task: str, *, steps: int, policy: str, seed: int = 0, action_seed: int = 0):
    """Run metaworld's env for `steps` steps from goal 0, resetting to the next goal at truncation.

    Returns (first_obs, records, actions); records hold per-step arrays laid out like TimeStep
    (same-step reset: `obs` is the next episode's first obs where `truncated`).
    """
    from metaworld.policies import ENV_POLICY_MAP
    from mtrl.envs.metaworld import load_benchmark

    tasks = load_benchmark("MT1", task=task, seed=seed)
    env_cls, goals = tasks.env_classes[0], tasks.goals[0]
    env = env_cls(reward_function_version="v2")
    env.seed(seed)
    env.set_task(goals[0])
    obs, _ = env.reset()
    first_obs = obs
    rng = np.random.default_rng(action_seed)
    expert = ENV_POLICY_MAP[task]() if policy == "scripted" else None
    actions = np.empty((steps, 4), np.float32)
    records = {"obs": [], "final_obs": [], "reward": [], "reward_rounded": [], "success": [], "truncated": []}
    for t in range(steps):
        if expert is None:
            actions[t] = rng.uniform(-1, 1, 4)
        else:
            actions[t] = np.clip(expert.get_action(obs.copy()), -1, 1)  # some policies edit their input
        obs, reward, terminated, truncated, info = env.step(actions[t])
        assert not terminated
        records["final_obs"].append(obs)
        records["reward"].append(reward)
        records["reward_rounded"].append(reward_of_rounded_state(env, obs, actions[t]))
        records["success"].append(bool(info["success"]))
        records["truncated"].append(truncated)
        if truncated:
            env.set_task(goals[(t + 1) // EPISODE % len(goals)])
            obs, _ = env.reset()
        records["obs"].append(obs)
    env.close()
    return first_obs, {k: np.asarray(v) for k, v in records.items()}, actions


def native_rollout(task: str, actions: np.ndarray, *, seed: int = 0, threads: int | None = 1):
    """Replay `actions` [time, 4] through the native env in one jitted scan; 39-dim obs (no one-hot)."""
    from mtrl.envs.metaworld import make_metaworld

    env = make_metaworld(
        "MT1", task=task, seed=seed, goal_sampling="sequential", backend="native", threads=threads
    )
    state, first = env.reset(jax.random.key(0))
    step = jax.jit(lambda s, a: jax.lax.scan(env.step, s, a))
    _, steps = step(state, actions[:, None, :])
    env.close()
    steps = jax.tree.map(lambda x: np.asarray(x)[:, 0], steps)
    return np.asarray(first.obs)[0, :39], steps


@dataclasses.dataclass
class Parity:
    """Worst differences over a rollout; `first_bad_step` is None when everything is within tolerance."""

    task: str
    policy: str
    steps: int
    obs_error: float
    reward_error: float  # against metaworld
    reward_error_rounded: float  # worst step, against the nearer of metaworld and its float32-rounded state
    success_mismatches: int
    truncated_mismatches: int
    first_bad_step: int | None
    worst_obs_column: int
    success_rate_reference: float
    success_rate_native: float

    @property
    def ok(self) -> bool:
        return self.first_bad_step is None

    def __str__(self) -> str:
        status = "ok" if self.ok else f"FIRST BAD STEP {self.first_bad_step}"
        return (
            f"{self.task:32s} {self.policy:8s} obs {self.obs_error:.1e} (col {self.worst_obs_column:2d}) "
            f"reward {self.reward_error:.1e} ({self.reward_error_rounded:.1e}) "
            f"success≠ {self.success_mismatches} "
            f"trunc≠ {self.truncated_mismatches} success ref/native "
            f"{self.success_rate_reference:.2f}/{self.success_rate_native:.2f}  {status}"
        )


def check_task(task: str, *, policy: str = "random", steps: int = 2 * EPISODE + 10, seed: int = 0) -> Parity:
    """Compare native with metaworld on `task` over `steps` steps of `policy` actions.

    The printed reward error is against metaworld, then (in parentheses) against the nearer of
    metaworld and metaworld on the float32-rounded state, which is what the check holds to 1e-5.
    """
    ref_first, ref, actions = reference_rollout(task, steps=steps, policy=policy, seed=seed)
    first, ours = native_rollout(task, actions, seed=seed)
    obs_diff = np.abs(ours.obs[:, :39] - ref["obs"].astype(np.float32))
    final_diff = np.abs(ours.final_obs[:, :39] - ref["final_obs"].astype(np.float32))
    obs_diff = np.maximum(obs_diff, final_diff)
    obs_diff[0] = np.maximum(obs_diff[0], np.abs(first - ref_first.astype(np.float32)))
    reward_diff = np.abs(ours.reward.astype(np.float64) - ref["reward"])
    success_bad = ours.success != ref["success"]
    truncated_bad = ours.truncated != ref["truncated"]
    rounded_diff = np.abs(ours.reward.astype(np.float64) - ref["reward_rounded"])
    reward_bad = (reward_diff > TOLERANCE) & (rounded_diff > TOLERANCE)
    bad = (obs_diff.max(axis=1) > TOLERANCE) | reward_bad | success_bad | truncated_bad
    return Parity(
        task=task,
        policy=policy,
        steps=steps,
        obs_error=float(obs_diff.max()),
        reward_error=float(reward_diff.max()),
        reward_error_rounded=float(np.minimum(reward_diff, rounded_diff).max()),
        success_mismatches=int(success_bad.sum()),
        truncated_mismatches=int(truncated_bad.sum()),
        first_bad_step=int(np.flatnonzero(bad)[0]) if bad.any() else None,
        worst_obs_column=int(np.unravel_index(obs_diff.argmax(), obs_diff.shape)[1]),
        success_rate_reference=_episode_success(ref["success"], ref["truncated"]),
        success_rate_native=_episode_success(ours.success, ours.truncated),
    )


def _episode_success(success: np.ndarray, truncated: np.ndarray) -> float:
    """Fraction of complete episodes with success at any step."""
    ends = np.flatnonzero(truncated)
    if len(ends) == 0:
        return float(success.any())
    starts = np.concatenate([[0], ends[:-1] + 1])
    return float(np.mean([success[s : e + 1].any() for s, e in zip(starts, ends, strict=True)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="task names (default: every ported task)")
    parser.add_argument("--policy", nargs="+", default=["random", "scripted"], choices=["random", "scripted"])
    parser.add_argument("--steps", type=int, default=2 * EPISODE + 10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from mtrl.envs.metaworld.native import ported_tasks

    failures = 0
    for task in args.tasks or ported_tasks():
        for policy in args.policy:
            result = check_task(task, policy=policy, steps=args.steps, seed=args.seed)
            print(result, flush=True)
            failures += not result.ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
