"""The training loop end to end on the toy env: learning, vmapped seeds, checkpoint round trip, evaluation."""

import dataclasses
import io
import json
import shutil

import jax
import numpy as np
import pytest
from helpers import LEARN, SHORT, SMALL, TOY, run_loop, toy_config
from mtrl.agents import moore_sac, mt_sac
from rich.console import Console

from mtrl import checkpoint, evaluation, offpolicy, training
from mtrl.app import wiring
from mtrl.app.policy import load_policy
from mtrl.app.progress import TrainingProgress
from mtrl.app.run import train as train_run
from mtrl.logger import read_metrics
from mtrl.types import EnvSpec, TimeStep


@pytest.mark.parametrize(
    "agent",
    [mt_sac.Config(**SMALL), pytest.param(moore_sac.Config(**SMALL, num_experts=3), marks=pytest.mark.slow)],
    ids=["mt_sac", "moore_sac"],
)
def test_agent_learns_toy_tasks(agent):
    """MT-SAC's is CI's one SAC learning run; the other torsos' (MOORE's here; CARE's, PaCo's, SoftMod's and
    the hypernetwork's in test_architectures; the gradient methods') are slow. CI checks that each of their
    updates fits a fixed batch (test_agents, test_gradient_methods)."""
    _, final, logged = run_loop(toy_config(agent, LEARN), jax.random.key(0))
    assert final["eval/success"] >= 0.9, final
    assert all(np.isfinite(m.get("train/critic_loss", 0.0)) for _, m in logged)


SEED_CHECKS = toy_config(mt_sac.Config(hidden_sizes=(32, 32)))


@pytest.fixture(scope="module")
def seed_4_run():
    """One MT-SAC toy run from seed 4: the single-seed run the seed checks below compare with."""
    return run_loop(SEED_CHECKS, jax.random.key(4))


def test_vmapped_seeds_match_single_seed_runs(seed_4_run):
    keys = jax.vmap(jax.random.key)(np.array([3, 4]))
    batched, _, _ = run_loop(SEED_CHECKS, keys)
    single, _, _ = seed_4_run
    leaves_b = jax.tree.leaves(jax.tree.map(lambda x: x[1], batched.agent))
    leaves_s = jax.tree.leaves(single.agent)
    for b, s in zip(leaves_b, leaves_s, strict=True):
        np.testing.assert_allclose(b, s, rtol=2e-4, atol=2e-5)


def test_same_seed_same_metrics(seed_4_run):
    _, _, first = seed_4_run
    _, _, second = run_loop(SEED_CHECKS, jax.random.key(4))

    def without_timing(logged):
        return [(s, {k: v for k, v in m.items() if k != "env/steps_per_second"}) for s, m in logged]

    assert without_timing(first) == without_timing(second)


def test_run_writes_directory_and_policy_round_trips(tmp_path):
    config = toy_config(moore_sac.Config(hidden_sizes=(32, 32), num_experts=2), run_dir=tmp_path / "run")
    result = train_run(config)
    run_dir = result.run_dir
    for name in (
        "config.json",
        "spec.json",
        "versions.json",
        "metrics.jsonl",
        "success_table.md",
        "plots/success_curve.png",
        "plots/success_curve_time.png",
        "plots/return_curve.png",
        "plots/task_curves.png",
        "plots/task_success.png",
    ):
        assert (run_dir / name).exists(), name
    records = read_metrics(run_dir)
    elapsed = [r["time/elapsed_s"] for r in records]  # on every line, from the run's start, never backwards
    assert elapsed[0] > 0 and all(b >= a for a, b in zip(elapsed, elapsed[1:], strict=False))
    assert records[-1]["eval/success"] == pytest.approx(result.mean_success)
    # every evaluation also logs the undiscounted return, per task and as the mean over tasks; the final
    # table shows both columns
    tasks = json.loads((run_dir / "spec.json").read_text())["task_names"]
    for record in (r for r in records if "eval/success" in r):
        per_task = [record[f"eval/{task}/return"] for task in tasks]
        assert record["eval/return"] == pytest.approx(np.mean(per_task)) and np.ptp(per_task) > 0
    table = (run_dir / "success_table.md").read_text()
    assert "| task | success | return |" in table and all(f"| {task} |" in table for task in tasks)

    # the restored policy acts exactly like the trained state did
    policy = load_policy(run_dir)
    train_env, eval_env = wiring.make_envs(config)
    template = wiring.agent_template(config, train_env.spec)  # shapes only: initialising would compile
    assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree.leaves(template))
    state = checkpoint.restore(run_dir, template)
    _, step = train_env.reset(jax.random.key(0))
    expected = moore_sac.act(state, step.obs, step.task_id, jax.random.key(0), True)
    np.testing.assert_allclose(policy(np.asarray(step.obs)), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(policy(np.asarray(step.obs[0])), expected[0], rtol=1e-6, atol=1e-7)

    # re-running into the same directory is refused and changes nothing
    before = (run_dir / "metrics.jsonl").read_text()
    with pytest.raises(FileExistsError, match="already exists"):
        train_run(config)
    assert (run_dir / "metrics.jsonl").read_text() == before


def test_evaluation_counts_every_goal_once():
    config = toy_config(mt_sac.Config(hidden_sizes=(16,)))
    _, eval_env = wiring.make_envs(config)
    agent = wiring.make_agent(config)
    state = agent.init(jax.random.key(0), eval_env.spec)
    episodes = evaluation.episodes_per_env(eval_env.spec, 50)
    flags = jax.jit(lambda s, k: evaluation.run_episodes(eval_env, agent, s, k, episodes))(
        state, jax.random.key(1)
    )
    assert flags.shape == (eval_env.spec.num_envs, 5)
    metrics = evaluation.eval_metrics(eval_env.spec, np.asarray(flags))
    assert set(metrics) == {"eval/success"} | {f"eval/{t}/success" for t in eval_env.spec.task_names}
    with pytest.raises(ValueError, match="multiple"):
        evaluation.episodes_per_env(eval_env.spec, 15)


def test_unstable_steps_are_counted_per_env_and_cleared_with_the_totals():
    stats = offpolicy.EpisodeStats.zeros(3)
    no = np.zeros(3, bool)
    for unstable in ([True, False, False], [True, False, True]):
        step = TimeStep(
            np.zeros((3, 2)), np.zeros(3), no, no, no, np.arange(3), np.zeros((3, 2)), np.array(unstable)
        )
        stats = stats.record(step)
    np.testing.assert_array_equal(stats.unstable_steps, [2, 0, 1])
    np.testing.assert_array_equal(stats.clear_totals().unstable_steps, [0, 0, 0])


def test_training_logs_instabilities_and_a_toy_env_has_none(seed_4_run):
    _, _, logged = seed_4_run
    train_lines = [m for _, m in logged if "train/success" in m or "env/steps_per_second" in m]
    assert train_lines and all(m["env/unstable_steps"] == 0 for m in train_lines)


def test_text_task_embeddings_travel_with_the_run_directory(tmp_path, monkeypatch):
    from mtrl.agents import care_sac

    from mtrl import task_text

    monkeypatch.setenv("MTRL_CACHE_DIR", str(tmp_path / "user-cache"))
    names = tuple(f"point-goal-{t}" for t in range(TOY.toy_num_tasks))
    vectors = np.random.default_rng(0).normal(size=(len(names), 5)).astype(np.float32)  # not MiniLM's 384
    task_text.text_embeddings(names, encoder=lambda texts: vectors)  # fills the user cache
    agent = care_sac.Config(hidden_sizes=(16,), num_encoders=2, encoder_sizes=(8,), context_sizes=(8,),
                            task_embedding="text")  # fmt: skip
    # warm-up only (no update program to compile): the point is where the embeddings live
    config = toy_config(agent, dataclasses.replace(SHORT, steps_per_task=400), run_dir=tmp_path / "run")
    run_dir = train_run(config).run_dir
    copied = task_text.text_embeddings(names, cache_dir=run_dir / "task_embeddings")
    np.testing.assert_array_equal(copied, vectors)
    assert "task_table" not in json.loads((run_dir / "config.json").read_text())["agent"]  # data, not config
    obs = np.zeros((len(names), 2 + len(names)), np.float32)
    obs[:, 2:] = np.eye(len(names))
    before = load_policy(run_dir)(obs)
    shutil.rmtree(tmp_path / "user-cache")  # elsewhere: no user cache; the run's own copy is used
    moved = shutil.move(run_dir, tmp_path / "moved")  # and run directories may move
    np.testing.assert_array_equal(load_policy(moved)(obs), before)


def test_vmapped_evaluation_reports_every_seed_and_task():
    spec = EnvSpec(name="t", obs_size=3, action_size=1, task_names=("a", "b"), envs_per_task=2,
                   episode_length=5, goals_per_task=4)  # fmt: skip
    flags = np.zeros((2, 4, 2), bool)  # [seeds, envs (task-major), episodes]
    flags[0, :2] = True  # seed 0 solves task a
    flags[1, 2:, 0] = True  # seed 1 solves half of task b
    metrics = evaluation.eval_metrics(spec, flags)
    assert metrics["eval/seed0/a/success"] == 1.0 and metrics["eval/seed0/b/success"] == 0.0
    assert metrics["eval/seed1/a/success"] == 0.0 and metrics["eval/seed1/b/success"] == 0.5
    assert metrics["eval/a/success"] == 0.5 and metrics["eval/success"] == 0.375


def test_evaluation_before_training_scores_the_untrained_agent_at_step_0(seed_4_run):
    """`eval_before_training` logs the untrained agent's evaluation at step 0, and it equals evaluating the
    freshly initialised state directly; without it the first evaluation comes after training."""
    loop = dataclasses.replace(SHORT, steps_per_task=50, warmup_steps_per_task=25, eval_before_training=True)
    config = toy_config(mt_sac.Config(hidden_sizes=(16, 16)), loop)
    _, _, logged = run_loop(config, jax.random.key(5))
    evaluations = [(step, m) for step, m in logged if "eval/success" in m]
    assert [step for step, _ in evaluations][0] == 0 and len(evaluations) == 2
    train_env, eval_env = wiring.make_envs(config)
    agent = wiring.make_agent(config)
    untrained = offpolicy.init_state(
        train_env, agent, jax.random.key(5), replay_capacity=loop.replay_per_task
    )
    episodes = evaluation.episodes_per_env(eval_env.spec, loop.eval_goals_per_task)
    flags = evaluation.run_episodes(
        eval_env, agent, untrained.agent, training._fold_in(jax.random.key(5), 0), episodes
    )
    assert (
        evaluations[0][1]["eval/success"]
        == evaluation.eval_metrics(eval_env.spec, np.asarray(flags))["eval/success"]
    )
    # without it (the loop's default, as in seed_4_run's), the one evaluation is the final one, after training
    assert not SEED_CHECKS.loop.eval_before_training and SEED_CHECKS.loop.eval_every_steps_per_task == 0
    _, _, plain = seed_4_run
    assert [step for step, m in plain if "eval/success" in m] == [plain[-1][0]] and plain[-1][0] > 0


def test_evaluations_report_their_progress_to_the_hook_and_the_bars():
    """Each evaluation (periodic, final, both protocols, two vmapped seeds) reports its episode rounds
    through `Hooks.evaluation_progress`; `TrainingProgress` shows a bar per running evaluation and removes
    it when the evaluation is complete."""
    loop = dataclasses.replace(
        SHORT, steps_per_task=400, warmup_steps_per_task=200, eval_every_steps_per_task=200,
        eval_envs_per_task=5, eval_goals_per_task=10, moore_eval_episodes=10,
    )  # fmt: skip
    config = toy_config(mt_sac.Config(hidden_sizes=(16,)), loop)
    train_env, eval_env = wiring.make_envs(config)
    reports = []
    hooks = training.Hooks(evaluation_progress=lambda *report: reports.append(report))
    keys = jax.vmap(jax.random.key)(np.array([0, 1]))
    training.train(
        train_env, eval_env, wiring.make_agent(config), loop, keys, hooks=hooks,
        moore_eval_env=wiring.make_moore_eval_env(config),
    )  # fmt: skip
    jax.effects_barrier()
    periodic = evaluation.episodes_per_env(eval_env.spec, 10)
    final = evaluation.episodes_per_env(eval_env.spec, eval_env.spec.goals_per_task)
    moore = evaluation.sampled_episodes_per_env(wiring.make_moore_eval_env(config).spec, 10)
    totals = {(protocol, total) for protocol, _, total in reports}
    assert totals == {("eval", periodic), ("eval", final), ("eval_moore", moore)}, totals
    # at 200 steps per task a periodic evaluation, at 400 the final one (all goals): each protocol's rounds
    # reported in full, once for both vmapped seeds
    evaluations = {("eval", periodic): 1, ("eval", final): 1, ("eval_moore", moore): 2}
    for (protocol, total), count in evaluations.items():
        done = sorted(d for p, d, t in reports if (p, t) == (protocol, total))
        assert done == sorted(list(range(1, total + 1)) * count), (protocol, done)

    bars = TrainingProgress(100, Console(file=io.StringIO(), force_terminal=True))
    assert bars.live
    bars.evaluation("eval_moore", 1, 3)
    assert [t.description for t in bars._progress.tasks] == ["train", "eval (MOORE protocol)"]
    bars.evaluation("eval_moore", 3, 3)
    assert [t.description for t in bars._progress.tasks] == ["train"]
    assert not TrainingProgress(100, Console(file=io.StringIO())).live  # not a terminal: no callbacks
