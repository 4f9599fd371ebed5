"""Held-out (meta-test) evaluation for ML benchmarks: adapt on each goal, then score.

Protocol. For every task of the env (the test split gives meta-test success, the train split meta-train
success) and each of `goals` goal configurations: `init_adaptation`, `adaptation_episodes` (N, default 10)
exploratory episodes, one `adapt` call on exactly those episodes, then `scored_episodes` (M, default 3)
deterministic episodes on the same goal; an episode succeeds if `success` is 1 at any of its steps. A
task's success is the mean over its goals and scored episodes; the benchmark's is the mean over tasks.

Meta-RL agent protocol (`MetaAgent`; MAML, RL² and PEARL plug in through it):
- `init_adaptation(agent_state, spec, key) -> context`: a fresh per-goal context for all envs (MAML:
  the meta-parameters; RL²: zero hidden state; PEARL: the prior), called once per goal round.
- `act(agent_state, context, step, key, deterministic) -> (action, context)`: `step` is the last
  `TimeStep` (obs plus the reward/done of the transition that led to it, which RL² feeds back);
  `deterministic` is False while adapting and True on scored episodes.
- `adapt(agent_state, context, episodes, key) -> context`: `episodes` is a `Transition` with leading
  axes `[envs, N, episode_length]` holding exactly the N adaptation episodes of each env's goal (MAML:
  inner gradient steps; PEARL: the posterior over the latent; RL²: keep the hidden state reached, from
  which its `act` starts every scored episode).

Running. One jitted `lax.scan` over goal rounds, each a scan over the round's steps, so the official
backend costs one host call per vector step. The env must be built with `goal_sampling="sequential"`,
`episodes_per_goal=N + M` and `E` envs per task (`E` divides `goals`): in round `r` env slot `j` of a
task plays goal `j + r*E` for its N + M consecutive episodes (`envs/goals.py`). The goal actually played
is checked at every step and returned (`goal_index`).

What `metaworld.evaluation.metalearning_evaluation` (metaworld 3.1.1) does, and where we differ:
- Goals: `gym.make_vec("Meta-World/<ML>-test", meta_batch_size=B, total_tasks_per_cls=G')` gives each
  task `E = B / tasks` sub-envs; sub-env `i` owns goals `i, i+E, ...` of the first `G'` goals (G' must be
  set, e.g. 40, whenever E does not divide 50) and `sample_tasks` walks them in a shuffled cycle (all
  sub-envs share one seed, hence one permutation). With `num_evals = G'/E` every goal is visited once, in
  the same groups of E as our rounds (in another round order, which no reported number depends on).
  We default to all 50 goals; pass `goals=G'` and build the env with `envs_per_task=E` to match.
- Adaptation: per round `agent.init()`, reset, N full episodes with `adapt_action` (no terminate on
  success), one `agent.adapt()`: as here. metaworld hands the agent `(obs, action, reward, done)` only.
- Scoring differs. metaworld turns on terminate-on-success, resets, and counts per *task* the first M
  episodes to end across all E sub-envs (by step, ties by env index); an env that succeeds early restarts
  on the same goal and may count again, so fast goals are over-weighted and M is per task, not per goal.
  We score M full episodes per goal and weight goals equally. `meta_success(..., count="metaworld")`
  reproduces metaworld's count from each env's first scored episode, exactly under the assumption that
  a restarted scored episode replays the first one (true for a deterministic policy of the observation and
  the adapted context, e.g. MAML's or PEARL's; RL² resets its hidden state at each end in metaworld).
- Aggregation: metaworld averages per-task rates over rounds and the mean over tasks: the same here.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mtrl.types import Env, EnvSpec, PyTree, Transition

COUNTS = ("per_goal", "metaworld")


class MetaAgent(NamedTuple):
    """A meta-RL agent's evaluation functions, bound to its config (see the module docstring)."""

    name: str
    init_adaptation: Any  # (agent_state, spec, key) -> context
    act: Any  # (agent_state, context, step: TimeStep, key, deterministic: bool) -> (action, context)
    adapt: Any  # (agent_state, context, episodes: Transition [envs, N, T], key) -> context


class MetaEvalResult(NamedTuple):
    """Per round, env and scored episode; rounds × envs_per_task = goals per task (numpy arrays)."""

    success: np.ndarray  # [rounds, envs, M] bool: success at any step of the scored episode
    first_success: np.ndarray  # [rounds, envs, M] int: 1-based step of the first success, T+1 if none
    returns: np.ndarray  # [rounds, envs, M] float: return of the full scored episode
    returns_to_success: np.ndarray  # [rounds, envs, M] float: return up to the first success (incl.)
    goal_index: np.ndarray  # [rounds, envs] int: the goal each env played in each round


def check_meta_env(spec: EnvSpec, goals: int, adaptation_episodes: int, scored_episodes: int) -> int:
    """Validate the request; return the number of goal rounds (goals / envs_per_task)."""
    if spec.name.startswith("MT"):
        raise ValueError(
            f"meta evaluation needs an ML benchmark (ML1, ML10, ML25, ML45) or toy-ml, got {spec.name}"
        )
    if adaptation_episodes < 0:
        raise ValueError(f"adaptation_episodes must be >= 0, got {adaptation_episodes}")
    if scored_episodes < 1:
        raise ValueError(f"scored_episodes must be >= 1, got {scored_episodes}")
    if goals < 1 or goals > spec.goals_per_task or goals % spec.envs_per_task:
        raise ValueError(
            f"goals per task must be a multiple of envs_per_task ({spec.envs_per_task}) "
            f"in 1..{spec.goals_per_task}, got {goals}"
        )
    return goals // spec.envs_per_task


def meta_evaluate(
    env: Env,
    agent: MetaAgent,
    agent_state: PyTree,
    key: jax.Array,
    *,
    adaptation_episodes: int = 10,
    scored_episodes: int = 3,
    goals: int | None = None,
) -> MetaEvalResult:
    """Run the held-out protocol on every task of `env` (see `make_meta_evaluator`)."""
    evaluator = make_meta_evaluator(
        env, agent, adaptation_episodes=adaptation_episodes, scored_episodes=scored_episodes, goals=goals
    )
    return evaluator(agent_state, key)


def make_meta_evaluator(
    env: Env,
    agent: MetaAgent,
    *,
    adaptation_episodes: int = 10,
    scored_episodes: int = 3,
    goals: int | None = None,
    seeds: bool = False,
):
    """The protocol compiled once: `evaluate(agent_state, key) -> MetaEvalResult`, for periodic evaluations.

    `env` must be built with goal_sampling="sequential" and episodes_per_goal = N + M. With `seeds`, the
    agent state and key carry a leading seed axis (a vmapped run) and so does every array of the result.
    """
    spec = env.spec
    goals = spec.goals_per_task if goals is None else goals
    rounds = check_meta_env(spec, goals, adaptation_episodes, scored_episodes)
    sampling, per_goal = env.schedule
    if sampling != "sequential" or per_goal != adaptation_episodes + scored_episodes:
        raise ValueError(
            "meta evaluation needs an env built with goal_sampling='sequential' and episodes_per_goal="
            f"{adaptation_episodes + scored_episodes} (adaptation + scored), got {sampling!r} and {per_goal}"
        )
    run = functools.partial(
        _run, env, agent, rounds=rounds, adapt_n=adaptation_episodes, score_m=scored_episodes
    )
    run = jax.jit(jax.vmap(run) if seeds else run)

    def evaluate(agent_state: PyTree, key: jax.Array) -> MetaEvalResult:
        out, pinned = run(agent_state, key)
        if not bool(np.all(pinned)):
            raise RuntimeError(f"{spec.name}: an env left its goal during a meta-evaluation round")
        return MetaEvalResult(*(np.asarray(x) for x in out))

    return evaluate


def _round_goals(spec: EnvSpec, r: jax.Array) -> jax.Array:
    """Goal of every env in round r under sequential sampling: slot j plays goal j + r*E."""
    slot = jnp.arange(spec.num_envs, dtype=jnp.int32) % spec.envs_per_task
    return (slot + r * spec.envs_per_task) % spec.goals_per_task


def _run(env, agent, agent_state, key, *, rounds, adapt_n, score_m):
    spec, T = env.spec, env.spec.episode_length
    steps_per_round = (adapt_n + score_m) * T
    key, reset_key = jax.random.split(key)
    env_state, step = env.reset(reset_key)

    def env_step(env_state, action, r, s):
        """One vector step at step s of round r; also returns the goal it played."""
        goal = env_state.goal_index
        env_state, new = env.step(env_state, action)
        return env_state, new, goal

    def one_round(carry, r):
        env_state, step, key, pinned = carry
        key, init_key, adapt_key, act_key = jax.random.split(key, 4)
        context = agent.init_adaptation(agent_state, spec, init_key)
        expected = _round_goals(spec, r)

        def adapt_body(carry, s):
            env_state, step, context, pinned = carry
            action, context = agent.act(agent_state, context, step, jax.random.fold_in(act_key, s), False)
            env_state, new, goal = env_step(env_state, action, r, s)
            tr = Transition(step.obs, action, new.reward, new.final_obs, new.terminated, step.task_id)
            return (env_state, new, context, pinned & jnp.all(goal == expected)), tr

        init = (env_state, step, context, pinned)
        (env_state, step, context, pinned), trs = jax.lax.scan(adapt_body, init, jnp.arange(adapt_n * T))
        # [N*T, envs, ...] -> [envs, N, T, ...]
        episodes = jax.tree.map(
            lambda x: jnp.swapaxes(x, 0, 1).reshape(spec.num_envs, adapt_n, T, *x.shape[2:]), trs
        )
        context = agent.adapt(agent_state, context, episodes, adapt_key)

        def score_body(carry, s):
            env_state, step, context, pinned = carry
            action, context = agent.act(agent_state, context, step, jax.random.fold_in(act_key, s), True)
            env_state, new, goal = env_step(env_state, action, r, s)
            return (env_state, new, context, pinned & jnp.all(goal == expected)), (new.success, new.reward)

        init = (env_state, step, context, pinned)
        steps = jnp.arange(adapt_n * T, steps_per_round)
        (env_state, step, _, pinned), (success, reward) = jax.lax.scan(score_body, init, steps)
        success = jnp.swapaxes(success, 0, 1).reshape(spec.num_envs, score_m, T)
        reward = jnp.swapaxes(reward, 0, 1).reshape(spec.num_envs, score_m, T)
        any_success = success.any(-1)
        first = jnp.where(any_success, jnp.argmax(success, axis=-1) + 1, T + 1)
        upto = jnp.arange(1, T + 1) <= first[..., None]
        out = (
            any_success,
            first,
            reward.sum(-1),
            jnp.where(upto, reward, 0.0).sum(-1),
            expected,
        )
        return (env_state, step, key, pinned), out

    init = (env_state, step, key, jnp.array(True))
    (_, _, _, pinned), out = jax.lax.scan(one_round, init, jnp.arange(rounds, dtype=jnp.int32))
    return out, pinned


def meta_success(spec: EnvSpec, result: MetaEvalResult, *, count: str = "per_goal") -> dict[str, float]:
    """Success rate of each task: "per_goal" (ours: every goal's M episodes weigh the same) or
    "metaworld" (the first M episodes to end per task and round under terminate-on-success)."""
    return {task: s for task, (s, _) in _per_task(spec, result, count).items()}


def meta_metrics(
    spec: EnvSpec, result: MetaEvalResult, *, prefix: str = "meta_test", count: str = "per_goal"
) -> dict[str, float]:
    """`<prefix>/success`, `<prefix>/return` (means over tasks) and `<prefix>/<task>/success`.

    A result with a leading seed axis (from a vmapped run) gives the means over seeds, plus each seed's own
    `<prefix>/seed<i>/success` and `<prefix>/seed<i>/<task>/success` for statistics across seeds.
    """
    if result.success.ndim == 4:
        per_seed = [
            meta_metrics(spec, MetaEvalResult(*(x[i] for x in result)), prefix=prefix, count=count)
            for i in range(result.success.shape[0])
        ]
        metrics = {name: float(np.mean([m[name] for m in per_seed])) for name in per_seed[0]}
        for i, seed_metrics in enumerate(per_seed):
            metrics.update({f"{prefix}/seed{i}/{k[len(prefix) + 1 :]}": v for k, v in seed_metrics.items()})
        return metrics
    per_task = _per_task(spec, result, count)
    metrics = {
        f"{prefix}/success": float(np.mean([s for s, _ in per_task.values()])),
        f"{prefix}/return": float(np.mean([g for _, g in per_task.values()])),
    }
    metrics.update({f"{prefix}/{task}/success": s for task, (s, _) in per_task.items()})
    return metrics


def _per_task(spec: EnvSpec, result: MetaEvalResult, count: str) -> dict[str, tuple[float, float]]:
    if count not in COUNTS:
        raise ValueError(f"unknown count {count!r}; valid: {', '.join(COUNTS)}")
    rounds, envs, m = result.success.shape
    if envs != spec.num_envs:
        raise ValueError(f"result has {envs} envs but {spec.name} has {spec.num_envs}")
    E = spec.envs_per_task
    if count == "per_goal":
        success = result.success.reshape(rounds, spec.num_tasks, E * m).mean(axis=(0, 2))
        returns = result.returns.reshape(rounds, spec.num_tasks, E * m).mean(axis=(0, 2))
    else:
        rates = np.zeros((rounds, spec.num_tasks))
        rets = np.zeros((rounds, spec.num_tasks))
        for r in range(rounds):
            for t in range(spec.num_tasks):
                envs_of_task = range(t * E, (t + 1) * E)
                first = result.first_success[r, envs_of_task, 0]
                to_success = result.returns_to_success[r, envs_of_task, 0]
                full = result.returns[r, envs_of_task, 0]
                flags, rets[r, t] = _first_to_end(first, to_success, full, spec.episode_length, m)
                rates[r, t] = flags.mean()
        success, returns = rates.mean(axis=0), rets.mean(axis=0)
    return {task: (float(s), float(g)) for task, s, g in zip(spec.task_names, success, returns, strict=True)}


def _first_to_end(first: np.ndarray, to_success: np.ndarray, full: np.ndarray, T: int, m: int):
    """metaworld's count for one task and round: the first m episode ends over the task's envs.

    Env i succeeding first at step s (<= T) ends episodes at s, 2s, 3s, ... (each a replay, a success);
    one that never succeeds ends at T, 2T, ... (failures). Ties go to the lower env index, as
    metaworld's loop over envs does. Returns (success flags, mean return) of the m counted episodes.
    """
    events = []
    for i, s in enumerate(first):
        succeeded = s <= T
        period = int(s) if succeeded else T
        ret = to_success[i] if succeeded else full[i]
        events.extend((k * period, i, succeeded, ret) for k in range(1, m + 1))
    counted = sorted(events, key=lambda e: (e[0], e[1]))[:m]
    return np.array([e[2] for e in counted], float), float(np.mean([e[3] for e in counted]))
