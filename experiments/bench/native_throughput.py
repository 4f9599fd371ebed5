"""Env throughput of the `native` Meta-World backend against metaworld's own vector env and raw physics.

Why: the native backend exists to be fast; this is the evidence. For each configuration (MT10 with 1, 4
and 16 envs per task, MT50 with 1) it measures, in one process and in alternating rounds:

- metaworld: `gym.make_vec("Meta-World/MT10"|"Meta-World/MT50", vector_strategy="sync")`, E copies of it
  for E envs per task (metaworld's vector env has one env per task), random actions, same-step reset;
- native: our backend in a jitted `lax.scan` with random actions drawn in JAX;
- physics ceiling: the same MjModel/MjData objects stepped by the same thread pool with random actions
  and nothing but the writes, `mj_step(nstep=frame_skip)` + `mj_forward`, i.e. what the native host call
  must do anyway; "phys+reset" adds metaworld's own reset every 500 steps (2 x 50 physics steps that
  settle the hand), which any backend identical to metaworld must also pay; and, where several envs
  share a model, `mujoco.rollout` (open-loop, no mj_forward, one call per task).

Every runner does at least two episodes (1000 vector steps), so each pays for its resets.
Printed: env-steps/s of each, native/metaworld (target >= 8 on MT10) and native/ceiling (target >= 0.7)
against both ceilings.
With `--profile` it also splits the native vector step into host physics, the rest of the host call
(mocap, writes, reads, resets) and the JAX side (io_callback transfer, observations, rewards), and times
the JAX side once more with a host call that returns a fixed reply and does no physics.

Run: `python experiments/bench/native_throughput.py` (about 10 minutes on 2 cores), or pick configs with
`--configs MT10x1 MT50x1`. `--small`, for a quick check: MT1x2 only (reach-v3, two envs), two rounds of
500 steps, so every runner still does its two episodes and pays for its resets.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import warnings
from pathlib import Path

import jax
import metaworld  # noqa: F401  (registers the Meta-World gymnasium ids)
import mujoco
import numpy as np
from mtrl.envs.metaworld import make_metaworld
from mtrl.envs.metaworld.benchmarks import EPISODE_LENGTH
from mtrl.envs.metaworld.native.physics import PhysicsPool, step_physics
from mujoco import rollout as mj_rollout

sys.path.insert(0, str(Path(__file__).parent))

from env_throughput import SMALL_TASK, metaworld_vector_env  # noqa: E402

CONFIGS = ("MT10x1", "MT10x4", "MT10x16", "MT50x1")
SMALL_CONFIG = "MT1x2"  # `--small`: MT1 on SMALL_TASK, two envs (so mujoco.rollout runs too)


def parse_config(config: str) -> tuple[str, int]:
    name, per_task = config.split("x")
    return name, int(per_task)


def metaworld_runner(name: str, per_task: int, seed: int):
    """E copies of metaworld's sync vector env (one env per task each), stepped in turn."""
    copies = [metaworld_vector_env(name, seed + i) for i in range(per_task)]
    for envs in copies:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)

    def run(vector_steps: int) -> float:
        start = time.perf_counter()
        for _ in range(vector_steps):
            for envs in copies:
                envs.step(envs.action_space.sample())
        return time.perf_counter() - start

    return run, sum(envs.num_envs for envs in copies)


def random_rollout(env, state, key, num_steps: int):
    shape = (env.spec.num_envs, env.spec.action_size)

    def body(carry, _):
        state, key = carry
        key, action_key = jax.random.split(key)
        action = jax.random.uniform(action_key, shape, minval=-1.0, maxval=1.0)
        state, step = env.step(state, action)
        return (state, key), step.reward.sum()

    (state, key), rewards = jax.lax.scan(body, (state, key), None, length=num_steps)
    return state, key, rewards


def native_runner(env, seed: int, vector_steps: int):
    """Our backend: `vector_steps` random steps per call in one compiled lax.scan."""
    state, _ = env.reset(jax.random.key(seed))
    key = jax.random.key(seed + 1)
    compiled = (
        jax.jit(functools.partial(random_rollout, env, num_steps=vector_steps)).lower(state, key).compile()
    )

    def run(_: int) -> float:
        nonlocal state, key
        start = time.perf_counter()
        state, key, _ = jax.block_until_ready(compiled(state, key))
        return time.perf_counter() - start

    return run


def physics_runner(host, seed: int, resets: bool = False):
    """The host's own envs and flat view, and a pool of as many threads, doing only physics.

    Per vector step: write every env's mocap and gripper controls (one assignment through the host's
    flat view), then `mj_step(frame_skip)` + `mj_forward` per env on the pool; no reads. The actions
    are random like the native run's, so the arm moves and makes contacts as it does there (a still
    arm is cheaper to simulate, which would flatter the ceiling... or the backend). With `resets`,
    every env also runs metaworld's own `reset` after each 500th step, as any backend identical to
    metaworld must: it settles the hand with 2 x 50 physics steps, 20 % on top of an episode's 500.
    """
    rng = np.random.default_rng(seed)
    n = len(host.envs)
    mocap = host.view.values[host.inputs[:, :3]]
    quat = np.tile([1.0, 0.0, 1.0, 0.0], (n, 1))
    envs, steps = host.envs, {"done": 0}

    def physics(i: int) -> None:
        step_physics(envs[i].model, envs[i].data, envs[i].frame_skip)
        if resets and steps["done"] % EPISODE_LENGTH == 0:
            envs[i].reset()

    pool = PhysicsPool(physics, n, host.threads)

    def run(vector_steps: int) -> float:
        nonlocal mocap
        start = time.perf_counter()
        for _ in range(vector_steps):
            action = rng.uniform(-1, 1, (n, 4))
            mocap = np.clip(mocap + 0.01 * action[:, :3], host.mocap_low, host.mocap_high)
            host.view.values[host.inputs] = np.concatenate([mocap, quat, action[:, 3:], -action[:, 3:]], 1)
            steps["done"] += 1
            pool.run()
            if resets and steps["done"] % EPISODE_LENGTH == 0:
                mocap = host.view.values[host.inputs[:, :3]]
        return time.perf_counter() - start

    return run


def rollout_runner(host, per_task: int):
    """mujoco.rollout per task over that task's E envs (same model), open loop, host.threads threads."""
    groups = [host.envs[i : i + per_task] for i in range(0, len(host.envs), per_task)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    prepared = []
    for envs in groups:
        models = [env.model for env in envs]
        datas = [mujoco.MjData(models[0]) for _ in range(host.threads)]
        state = np.stack([_get_state(env, spec) for env in envs])
        prepared.append((models, datas, state))

    def run(vector_steps: int) -> float:
        start = time.perf_counter()
        for models, datas, state in prepared:
            mj_rollout.rollout(models, datas, state, nstep=5 * vector_steps)
        return time.perf_counter() - start

    return run


def _get_state(env, spec):
    state = np.empty(mujoco.mj_stateSize(env.model, spec))
    mujoco.mj_getState(env.model, env.data, state, spec)
    return state


def profile_host(env, vector_steps: int) -> dict[str, float]:
    """Split one native vector step: host physics, the rest of the host call, and the JAX side."""
    host = env.host
    times = {"physics": 0.0, "host_step": 0.0}

    def timed(label, function):
        def call(*args):
            start = time.perf_counter()
            result = function(*args)
            times[label] += time.perf_counter() - start
            return result

        return call

    original_run, original_step = host.pool.run, host.step
    host.pool.run, host.step = timed("physics", original_run), timed("host_step", original_step)
    try:
        run = native_runner(env, 0, vector_steps)
        run(0)
        times["physics"] = times["host_step"] = 0.0
        total = run(0)
    finally:
        host.pool.run, host.step = original_run, original_step
    # the JAX side alone: the host call returns the same reply every step and does no physics
    reply = host.reset(np.zeros(len(host.envs), np.int64))
    host.step = lambda request: reply
    try:
        run = native_runner(env, 0, vector_steps)
        run(0)
        jax_alone = run(0)
    finally:
        host.step = original_step
    return {"total": total, **times, "jax_alone": jax_alone}


def measure(config: str, seed: int, env_steps: int, rounds: int, profile: bool) -> dict:
    name, per_task = parse_config(config)
    theirs, num_envs = metaworld_runner(name, per_task, seed)
    # at least two episodes per runner, so that every runner pays for its resets
    vector_steps = max(2 * EPISODE_LENGTH // rounds, env_steps // num_envs // rounds)
    task = SMALL_TASK if name == "MT1" else None
    env = make_metaworld(name, task=task, envs_per_task=per_task, seed=seed, backend="native")
    ours = native_runner(env, seed, vector_steps)
    runners = {
        "metaworld": theirs,
        "native": ours,
        "physics": physics_runner(env.host, seed),
        "phys+reset": physics_runner(env.host, seed, resets=True),
    }
    if per_task > 1:
        runners["rollout"] = rollout_runner(env.host, per_task)
    for run in runners.values():  # warm-up round, untimed
        run(vector_steps)
    totals = dict.fromkeys(runners, 0.0)
    for _ in range(rounds):  # alternate so every runner sees the same background load
        for label, run in runners.items():
            totals[label] += run(vector_steps)
    rates = {label: num_envs * vector_steps * rounds / t for label, t in totals.items()}
    result = {"config": config, "num_envs": num_envs, "threads": env.host.threads, **rates}
    if profile:
        result["profile"] = profile_host(env, vector_steps)
        result["profile"]["vector_steps"] = vector_steps
    env.close()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help=f"{SMALL_CONFIG} ({SMALL_TASK}), 2 x 500 steps")
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), help=f"from {', '.join((*CONFIGS, SMALL_CONFIG))}"
    )
    parser.add_argument("--env-steps", type=int, default=40_000, help="timed env steps per runner")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.small:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(configs=[SMALL_CONFIG], env_steps=0, rounds=2)
        args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
    print(
        f"jax {jax.__version__} ({jax.default_backend()}), mujoco {mujoco.__version__}, {os.cpu_count()} CPUs"
    )
    rates = ("metaworld", "native", "physics", "phys+reset", "rollout")
    columns = (*rates, "native/mw", "native/phys", "n/phys+rst")
    print(f"{'config':8s} {'envs':>5s} " + " ".join(f"{c:>11s}" for c in columns))
    for config in args.configs:
        r = measure(config, args.seed, args.env_steps, args.rounds, args.profile)
        cells = [f"{r[c]:11.0f}" if c in r else f"{'-':>11s}" for c in rates]
        cells += [f"{r['native'] / r[c]:11.2f}" for c in ("metaworld", "physics", "phys+reset")]
        print(f"{r['config']:8s} {r['num_envs']:5d} " + " ".join(cells), flush=True)
        if "profile" in r:
            p = r["profile"]
            per_step = 1e6 / p["vector_steps"]
            print(
                f"         per vector step: total {p['total'] * per_step:.0f} us, host call "
                f"{p['host_step'] * per_step:.0f} us (physics {p['physics'] * per_step:.0f} us), "
                f"JAX side and transfer "
                f"{(p['total'] - p['host_step']) * per_step:.0f} us "
                f"({p['jax_alone'] * per_step:.0f} us when the host call does no physics)",
                flush=True,
            )
    print(
        "env-steps/s; metaworld = gym.make_vec sync; physics = random-action mj_step+mj_forward, same threads"
    )


if __name__ == "__main__":
    main()
