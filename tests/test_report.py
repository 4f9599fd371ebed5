"""`mtrl report`: aggregates against independent references, bootstrap intervals, grouping, files, errors."""

import dataclasses
import json

import matplotlib.text
import numpy as np
import pytest
import scipy.stats
from helpers import write_run
from mtrl.agents import maml, mh_sac, moore_sac, mt_sac, pearl

from mtrl.app import cli, presets
from mtrl.app import report as app_report
from mtrl.app.config import EnvConfig, TrainConfig, to_json
from mtrl.logger import WandbConfig, read_metrics
from mtrl.report import plots, published, stats
from mtrl.report.runs import flatten, read_run_dir
from mtrl.training import LoopConfig

# --- the statistics against independent computations -------------------------------------------------


def test_aggregates_equal_scipy_and_numpy_references():
    scores = np.random.default_rng(0).uniform(0, 1.3, size=(7, 5))  # some above the target of 1
    assert stats.iqm(scores) == pytest.approx(scipy.stats.trim_mean(scores.ravel(), 0.25))
    assert stats.mean(scores) == pytest.approx(scores.ravel().mean())
    assert stats.median(scores) == pytest.approx(np.median(scores.mean(axis=0)))
    assert stats.optimality_gap(scores) == pytest.approx(1 - np.clip(scores, None, 1).mean())
    # by hand: 8 sorted scores 0..7, cut floor(8/4) = 2 at each end, mean(2, 3, 4, 5) = 3.5
    assert stats.iqm(np.arange(8.0).reshape(2, 4)) == 3.5
    # leading axes are batches of independent score matrices
    batch = np.random.default_rng(1).uniform(size=(3, 6, 4))
    for name, aggregate in stats.AGGREGATES.items():
        np.testing.assert_allclose(aggregate(batch), [aggregate(b) for b in batch], err_msg=name)


def test_probability_of_improvement_is_mann_whitney_u_averaged_over_tasks():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, size=(6, 3)) / 3  # coarse values: many ties, which count half
    y = rng.integers(0, 4, size=(4, 3)) / 3
    per_task = [scipy.stats.mannwhitneyu(x[:, k], y[:, k]).statistic / (6 * 4) for k in range(3)]
    assert stats.probability_of_improvement(x, y) == pytest.approx(np.mean(per_task))
    assert stats.probability_of_improvement(x + 2, y) == 1.0  # dominates on every task
    assert stats.probability_of_improvement(x, x) == 0.5
    interval = stats.improvement_interval(x, x, reps=500)
    assert interval.point == 0.5 and interval.low <= 0.5 <= interval.high


def test_stratified_bootstrap_resamples_runs_within_each_task():
    scores = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]])
    samples = stats.stratified_bootstrap(scores, 200, np.random.default_rng(0))
    assert samples.shape == (200, 3, 2)
    assert set(np.unique(samples[:, :, 0])) == {0.0, 1.0, 2.0}
    assert set(np.unique(samples[:, :, 1])) == {10.0, 11.0, 12.0}
    # seeds agree within every task but tasks differ: a stratified interval of the mean has zero width
    flat = stats.interval(np.tile([0.2, 0.9, 0.5], (5, 1)), stats.mean, reps=300)
    assert flat.low == flat.high == pytest.approx(flat.point)


def test_intervals_contain_the_estimate_and_shrink_with_more_seeds():
    rng = np.random.default_rng(3)
    widths = []
    for seeds in (5, 40):
        scores = rng.beta(2, 5, size=(seeds, 4))
        for aggregate in stats.AGGREGATES.values():
            point, low, high = stats.interval(scores, aggregate, reps=1000)
            assert low <= point <= high
        point, low, high = stats.interval(scores, stats.iqm, reps=1000)
        widths.append(high - low)
        assert stats.interval(scores, stats.iqm, reps=1000) == (point, low, high)  # seeded: reproducible
    assert widths[1] < 0.6 * widths[0]  # width ∝ 1/sqrt(seeds): expected ratio sqrt(5/40) ≈ 0.35


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    true_mean = 2 / 7  # Beta(2, 5)
    covered = [
        low <= true_mean <= high
        for low, high in (
            stats.interval(rng.beta(2, 5, size=(20, 3)), stats.mean, reps=400, seed=i)[1:] for i in range(300)
        )
    ]
    assert 0.90 <= np.mean(covered) <= 0.99, np.mean(covered)


def test_bad_statistics_input_is_one_line():
    with pytest.raises(ValueError, match=r"\[runs, tasks\]"):
        stats.interval(np.zeros(5), stats.mean)
    with pytest.raises(ValueError, match="reps"):
        stats.interval(np.zeros((2, 2)), stats.mean, reps=0)
    with pytest.raises(ValueError, match="same tasks"):
        stats.improvement_interval(np.zeros((2, 2)), np.zeros((2, 3)))


# --- synthetic run directories with known answers ----------------------------------------------------


def two_methods(tmp_path, seeds=5):
    """5 seeds of MOORE that solve more than 5 seeds of MT-SAC on every task; known final and best scores."""
    rng = np.random.default_rng(5)
    finals = {"moore": rng.uniform(0.6, 1.0, (seeds, 4)), "mt": rng.uniform(0.0, 0.5, (seeds, 4))}
    agents = {"moore": moore_sac.Config(num_experts=4), "mt": mt_sac.Config()}
    dirs = []
    for name, final in finals.items():
        for seed in range(seeds):
            middle = final[seed] * (0.5 if seed != 0 else 1.2)  # seed 0 was best mid-training
            dirs.append(write_run(tmp_path / f"{name}-{seed}", agents[name], seed, [middle, final[seed]]))
    return dirs, finals


def test_groups_aggregate_final_and_best_scores_of_each_method(tmp_path):
    dirs, finals = two_methods(tmp_path)
    groups = app_report.load_groups(dirs)
    assert [g.label for g in groups] == ["moore_sac", "mt_sac"]  # seed, run_dir and wandb are ignored
    moore, mt = groups
    np.testing.assert_allclose(moore.scores("final"), finals["moore"])
    best = finals["moore"].copy()
    best[0] *= 1.2
    np.testing.assert_allclose(moore.scores("best"), best)
    np.testing.assert_allclose(moore.task_means(), finals["moore"].mean(axis=0))

    report = app_report.build_report(groups, reps=500)
    final = report.summaries[0].intervals["final"]
    assert final["IQM"].point == pytest.approx(scipy.stats.trim_mean(finals["moore"].ravel(), 0.25))
    assert final["mean"].point == pytest.approx(finals["moore"].mean())
    assert final["median"].point == pytest.approx(np.median(finals["moore"].mean(axis=0)))
    assert final["optimality gap"].point == pytest.approx(1 - finals["moore"].mean())
    assert report.summaries[0].intervals["best"]["mean"].point == pytest.approx(best.mean())
    for s in report.summaries:
        for measure in s.intervals.values():
            for point, low, high in measure.values():
                assert low <= point <= high
    [improvement] = report.improvements
    assert (improvement.x, improvement.y, improvement.interval.point) == ("moore_sac", "mt_sac", 1.0)


def test_grouping_splits_on_config_fields_and_follows_group_by(tmp_path):
    runs = [
        write_run(tmp_path / "a", mt_sac.Config(), 0, [[0.5] * 4] * 2),
        write_run(tmp_path / "b", mt_sac.Config(), 1, [[0.7] * 4] * 2),
        write_run(tmp_path / "c", mt_sac.Config(hidden_sizes=(64, 64)), 0, [[0.1] * 4] * 2),
    ]
    groups = app_report.load_groups(runs)
    assert [(g.label, len(g.runs)) for g in groups] == [
        ("mt_sac agent.hidden_sizes=400x400x400", 2),
        ("mt_sac agent.hidden_sizes=64x64", 1),
    ]
    [merged] = app_report.load_groups(runs[:2], ["agent_name"])
    assert merged.label == "agent_name=mt_sac" and len(merged.runs) == 2
    with pytest.raises(ValueError, match="share seed 0"):  # a and c in one group: the same seed twice
        app_report.load_groups(runs, ["agent_name"])


def test_vmapped_seeds_are_separate_runs(tmp_path):
    curves = [[0.25, 0.5, 0.5, 0.75], [0.5, 0.5, 0.75, 1.0]]
    means = [[0.2, 0.5], [0.5, 0.75], [0.7, 1.0]]  # per seed and evaluation; their average is the curve
    run = write_run(tmp_path / "v", mt_sac.Config(), 10, curves, num_seeds=3, seed_means=means)
    seeds = read_run_dir(run)
    assert [s.seed for s in seeds] == [10, 11, 12]
    [group] = app_report.load_groups([run])
    assert not group.per_task_scores
    np.testing.assert_allclose(group.scores("final"), [[0.5], [0.75], [1.0]])
    np.testing.assert_allclose(group.task_means(), curves[1])
    report = app_report.build_report([group], reps=200)
    assert report.summaries[0].intervals["final"]["mean"].point == pytest.approx(0.75)
    assert any("per-task success per seed was not logged" in note for note in report.notes)


def test_report_writes_files_and_refuses_to_overwrite(tmp_path, capsys):
    dirs, _ = two_methods(tmp_path)
    out = tmp_path / "out"
    app_report.main([*map(str, dirs), "--out", str(out), "--reps", "200"])
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "summary.csv", "per_task.csv", "improvement.csv"} <= names
    assert {
        "curves_MT10.png",
        "task_success_MT10.png",
        "aggregates_final.png",
        "aggregates_best.png",
    } <= names
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 2 * 2 * 4  # header + groups × measures × statistics
    assert "| moore_sac | mt_sac | MT10 | 1.000" in (out / "report.md").read_text()
    printed = capsys.readouterr().out
    assert "IQM" in printed and "P(X > Y)" in printed
    before = (out / "report.md").read_text()
    with pytest.raises(FileExistsError, match="not empty"):
        app_report.main([*map(str, dirs), "--out", str(out)])
    assert (out / "report.md").read_text() == before


def test_bad_inputs_are_one_line_naming_the_path_or_value(tmp_path):
    good = write_run(tmp_path / "good", mt_sac.Config(), 0, [[0.5] * 4] * 2)
    (tmp_path / "empty").mkdir()
    pending = write_run(tmp_path / "pending", mt_sac.Config(), 1, [[0.5] * 4] * 2)
    (pending / "metrics.jsonl").write_text('{"step": 10, "train/critic_loss": 1.0}\n')
    other = write_run(tmp_path / "mt50", mt_sac.Config(), 2, [[0.5] * 4] * 2, env=EnvConfig(name="MT50"))
    cases = [
        ([tmp_path / "missing"], None, "missing is not an mtrl run directory"),
        ([tmp_path / "empty"], None, "empty is not an mtrl run directory"),
        ([pending], None, "pending has no evaluation yet"),
        ([good, other], ["agent_name"], "mixes benchmarks MT10, MT50"),
        ([good], ["agent.num_experts"], "unknown --group-by field 'agent.num_experts'; valid fields: "),
        ([good, tmp_path / "." / "good"], None, "good is given twice"),
    ]
    for dirs, group_by, message in cases:
        with pytest.raises(ValueError, match=message):
            app_report.load_groups(dirs, group_by)
    assert len(app_report.load_groups([good, other])) == 2  # two benchmarks side by side are fine
    with pytest.raises(ValueError, match="--reps"):
        app_report.build_report(app_report.load_groups([good]), reps=0)


def test_cli_report_and_its_errors(tmp_path, capsys):
    dirs, _ = two_methods(tmp_path, seeds=3)
    out = tmp_path / "cli-out"
    assert (
        cli.main(["report", *map(str, dirs), "--out", str(out), "--reps", "100", "--compare-published"]) == 0
    )
    printed = capsys.readouterr().out
    assert "Ours beside published" in printed and "JAX re-run" in printed
    assert (out / "report.md").exists()
    assert cli.main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "nowhere is not an mtrl run directory" in error
    assert not (tmp_path / "o2").exists()


def test_curves_against_time_take_each_seeds_latest_evaluation(tmp_path, capsys):
    three = {"steps": (1000, 2000, 3000)}
    # seed 0 was evaluated at 60, 180 and 300 s; seed 1, on a slower machine, at 120, 360 and 600 s
    fast = write_run(tmp_path / "a", mt_sac.Config(), 0, [[0.1] * 4, [0.5] * 4, [0.9] * 4], **three,
                     elapsed=(60, 180, 300))  # fmt: skip
    slow = write_run(tmp_path / "b", mt_sac.Config(), 1, [[0.0] * 4, [0.2] * 4, [0.4] * 4], **three,
                     elapsed=(120, 360, 600))  # fmt: skip
    [group] = app_report.load_groups([fast, slow])
    # from when both had been evaluated once (120 s) to the first one's last evaluation (300 s)
    np.testing.assert_allclose(group.common_times(points=5), [120, 165, 210, 255, 300])
    scores = group.time_curve_scores(np.array([120.0, 179.9, 180.0, 300.0]))  # [times, seeds, tasks]
    np.testing.assert_allclose(scores[:, :, 0], [[0.1, 0.0], [0.1, 0.0], [0.5, 0.0], [0.9, 0.0]])

    out = tmp_path / "out"
    assert cli.main(["report", str(fast), str(slow), "--out", str(out), "--reps", "50", "--x", "time"]) == 0
    assert (out / "curves_time_MT10.png").exists() and not (out / "curves_MT10.png").exists()

    capsys.readouterr()
    unclocked = write_run(tmp_path / "c", mt_sac.Config(), 2, [[0.1] * 4, [0.5] * 4])
    for args, message in [
        ([str(fast), str(unclocked), "--x", "time"], "c (seed 2) logged no time/elapsed_s"),
        ([str(fast), "--x", "hours"], "--x"),
    ]:
        assert cli.main(["report", *args, "--out", str(tmp_path / "refused")]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and message in error and "steps" in error, error
        assert not (tmp_path / "refused").exists()


# --- the literature -----------------------------------------------------------------------------------


def test_compare_published_matches_agent_and_benchmark(tmp_path):
    dirs, finals = two_methods(tmp_path)
    report = app_report.build_report(app_report.load_groups(dirs), reps=200, compare_published=True)
    rows = {(r[0], r[5].split(":")[0], r[6].split(" [")[0]): r for r in report.published_rows}
    assert set(rows) == {
        ("moore_sac", "MOORE", "MOORE paper"),
        ("moore_sac", "MOORE", "JAX re-run"),
        ("mt_sac", "MT-SAC", "CARE paper"),
        ("mt_sac", "MT-SAC", "Meta-World paper"),
    }
    assert rows["moore_sac", "MOORE", "JAX re-run"][5] == "MOORE: 0.834 ± 0.075"
    assert rows["moore_sac", "MOORE", "MOORE paper"][5] == "MOORE: ≈0.887"
    assert rows["moore_sac", "MOORE", "JAX re-run"][4].startswith(f"{finals['moore'].mean():.3f} [")
    assert rows["mt_sac", "MT-SAC", "Meta-World paper"][4].endswith("(best)")  # their max over training
    assert any("average maximum success" in note for note in report.notes)
    # every source's footnote says its horizon and evaluation protocol; ours says the runs' horizon
    moore_note = next(note for note in report.notes if note.startswith("[") and "Hendawy" in note)
    assert "Horizon: 150 steps" in moore_note and "actions sampled from the policy" in moore_note
    assert report.notes[-1].startswith("ours:") and "horizon 500 (Meta-World's own) steps" in report.notes[-1]
    toy = write_run(tmp_path / "toy", mt_sac.Config(), 0, [[0.5] * 4] * 2, env=EnvConfig(name="toy"))
    report = app_report.build_report(app_report.load_groups([toy]), reps=50, compare_published=True)
    assert report.published_rows == [] and "no published figures" in report.notes[-1]


def test_meta_runs_compare_their_meta_test_success_with_the_meta_world_table(tmp_path):
    dirs = []
    for seed in range(3):
        path = tmp_path / f"maml-{seed}"
        config = TrainConfig(agent=maml.Config(), env=EnvConfig(name="ML10"), seed=seed, run_dir=path)
        path.mkdir()
        (path / "config.json").write_text(json.dumps(to_json(config), default=str))
        record = {"step": 10, "env/steps_per_task": 1000, "meta_test/success": 0.2 + 0.1 * seed}
        record.update({f"meta_test/{t}/success": 0.2 + 0.1 * seed for t in ("a-v3", "b-v3")})
        record["meta_train/success"] = 0.9  # read nowhere: the table's number is meta-test
        (path / "metrics.jsonl").write_text(json.dumps(record) + "\n")
        dirs.append(path)
    report = app_report.build_report(app_report.load_groups(dirs), reps=50, compare_published=True)
    (row,) = report.published_rows
    assert row[0] == "maml" and row[5].startswith("MAML: 0.316") and "Meta-World paper" in row[6]
    assert row[4].startswith("0.300")


def test_published_method_follows_the_config():
    def method(agent, env="MT10"):
        return published.method_of(flatten(to_json(TrainConfig(agent=agent, env=EnvConfig(name=env)))))

    assert method(moore_sac.Config()) == "MOORE"
    assert method(maml.Config(), "ML10") == "MAML" and method(pearl.Config(), "ML45") == "PEARL"
    assert method(mt_sac.Config(gradient_method="pcgrad")) == "PCGrad"
    assert method(mt_sac.Config(gradient_method="cagrad")) is None  # no source ran it
    assert method(mh_sac.Config(hidden_sizes=(4096, 4096, 4096))) == "MT-MH-SAC widened"
    assert method(mh_sac.Config(hidden_sizes=(4096, 4096, 4096)), "MT50") == "MT-MH-SAC"
    assert published.published_for("MT-MH-SAC widened", "MT10")[0].success == 0.928


# --- a real run ---------------------------------------------------------------------------------------


def test_report_on_a_real_vmapped_toy_run(tmp_path):
    from mtrl.app.run import train

    loop = LoopConfig(
        steps_per_task=600,
        warmup_steps_per_task=200,
        steps_per_iteration=25,
        batch_per_task=16,
        replay_per_task=2_000,
        eval_every_steps_per_task=300,
        eval_envs_per_task=5,
        eval_goals_per_task=5,
        log_every_steps_per_task=300,
        checkpoint_every_steps_per_task=600,
    )
    config = TrainConfig(
        agent=mt_sac.Config(hidden_sizes=(16,)),
        env=EnvConfig(name="toy", envs_per_task=4, toy_num_tasks=3),
        loop=loop,
        wandb=WandbConfig(mode="disabled"),
        num_seeds=2,
        run_dir=tmp_path / "toy",
    )
    run_dir = train(config).run_dir
    evals = [r for r in read_metrics(run_dir) if "eval/success" in r]
    out = tmp_path / "report"
    result = app_report.main([str(run_dir), "--out", str(out), "--reps", "100"])
    [summary] = result.summaries
    assert [r.seed for r in summary.group.runs] == [0, 1]
    assert summary.intervals["final"]["mean"].point == pytest.approx(evals[-1]["eval/success"])
    seed_finals = [evals[-1][f"eval/seed{i}/success"] for i in range(2)]
    scores = summary.group.scores("final")  # [seeds, tasks], from each seed's per-task metrics
    np.testing.assert_allclose(scores.mean(axis=1), seed_finals)
    for i in range(2):
        expected = [evals[-1][f"eval/seed{i}/{task}/success"] for task in summary.group.task_names]
        np.testing.assert_allclose(scores[i], expected)
    np.testing.assert_allclose(summary.group.common_steps(), [r["env/steps_per_task"] for r in evals])
    per_task = (out / "per_task.csv").read_text().splitlines()[1:]
    for line, task in zip(per_task, summary.group.task_names, strict=True):
        assert float(line.split(",")[3]) == pytest.approx(evals[-1][f"eval/{task}/success"])


def test_a_sweep_directory_stands_for_the_runs_inside_it(tmp_path):
    sweep = tmp_path / "sweep"
    dirs, _ = two_methods(sweep)
    (sweep / "logs").mkdir()  # what the sweep launcher keeps beside its runs
    grouped = app_report.load_groups([sweep])
    assert [len(g.runs) for g in grouped] == [len(g.runs) for g in app_report.load_groups(dirs)] == [5, 5]
    with pytest.raises(ValueError, match="logs is not an mtrl run directory"):
        app_report.load_groups([sweep / "logs"])


# --- --metric return and --protocol: MiniGrid runs ----------------------------------------------------

MT3 = ("LavaGapS7", "RedBlueDoors-6x6", "MemoryS11")


def write_minigrid_run(path, method, seed, values, steps=(2000, 4000)):
    """A MiniGrid run by hand, logged as `mtrl.evaluation.eval_metrics` does: `values["<protocol>/<metric>"]`
    is `[seeds, evals, tasks]`; the run logs per-task means over seeds and, with several seeds, each seed's
    own."""
    num_seeds = len(next(iter(values.values())))
    config = dataclasses.replace(
        presets.minigrid("MT3", method), seed=seed, num_seeds=num_seeds, run_dir=path
    )
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(to_json(config), default=str))
    (path / "spec.json").write_text(json.dumps({"task_names": list(MT3)}))
    lines = []
    for i, step in enumerate(steps):
        record = {"step": 3 * step, "env/steps_per_task": step}
        for key, array in values.items():
            protocol, metric = key.split("/")
            per_seed = np.asarray(array)[:, i]  # [seeds, tasks]
            record[key] = float(per_seed.mean())
            record.update(
                {
                    f"{protocol}/{t}/{metric}": float(v)
                    for t, v in zip(MT3, per_seed.mean(axis=0), strict=True)
                }
            )
            for k, row in enumerate(per_seed if num_seeds > 1 else []):
                record[f"{protocol}/seed{k}/{metric}"] = float(row.mean())
                record.update(
                    {f"{protocol}/seed{k}/{t}/{metric}": float(v) for t, v in zip(MT3, row, strict=True)}
                )
        lines.append(record)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


KEYS = ("eval/success", "eval/return", "eval_moore/success", "eval_moore/return")


def minigrid_methods(tmp_path, seeds=4):
    """MOORE as `seeds` single-seed runs, MT-PPO as one run of `seeds` vmapped seeds. MOORE has the higher
    success and greedy return but the lower MOORE-protocol return, so P(MOORE > MT-PPO) is 1 or 0 by what is
    read; and MOORE's seed 0 has its best MOORE-protocol return mid-training, its best success at the end."""
    rng = np.random.default_rng(6)
    high, low = (0.6, 1.0), (0.0, 0.4)
    ranges = {"moore": (high, high, high, low), "mtppo": (low, low, low, high)}
    finals = {
        m: {k: rng.uniform(*r, (seeds, 3)) for k, r in zip(KEYS, rs, strict=True)} for m, rs in ranges.items()
    }
    middles = {m: {k: v * 0.5 for k, v in f.items()} for m, f in finals.items()}
    middles["moore"]["eval_moore/return"][0] *= 3  # 1.5 × final
    curves = {m: {k: np.stack([middles[m][k], finals[m][k]], axis=1) for k in KEYS} for m in finals}
    dirs = [
        write_minigrid_run(
            tmp_path / f"moore-{s}", "moore", s, {k: v[s : s + 1] for k, v in curves["moore"].items()}
        )
        for s in range(seeds)
    ]
    dirs.append(write_minigrid_run(tmp_path / "mtppo", "mtppo", 0, curves["mtppo"]))
    return dirs, finals


def test_each_metric_and_protocol_reads_its_own_values(tmp_path):
    dirs, finals = minigrid_methods(tmp_path)
    cases = [
        ("success", None, "eval/success"),  # the default: as before
        ("return", None, "eval_moore/return"),  # return defaults to the MOORE protocol where logged
        ("return", "eval", "eval/return"),
        ("success", "eval_moore", "eval_moore/success"),
    ]
    for metric, protocol, key in cases:
        moore, mtppo = app_report.load_groups(dirs, None, metric, protocol)
        assert (moore.label, len(moore.runs), len(mtppo.runs)) == ("moore_ppo agent.torso=moore", 4, 4)
        assert (
            moore.benchmark
            == mtppo.benchmark
            == "MiniGrid-MT3" + (" (eval_moore)" if key.startswith("eval_moore") else "")
        )
        for group, method in ((moore, "moore"), (mtppo, "mtppo")):
            assert group.per_task_scores  # vmapped seeds: read from <protocol>/seed<k>/<task>/<metric>
            np.testing.assert_allclose(group.scores("final"), finals[method][key], err_msg=key)
            np.testing.assert_allclose(group.task_means(), finals[method][key].mean(axis=0), err_msg=key)
            curve = group.curve_scores(group.common_steps())
            assert curve.shape == (2, 4, 3)  # [evaluations, seeds, tasks]
            np.testing.assert_allclose(curve[-1], finals[method][key], err_msg=key)
        best = finals["moore"][key].copy()
        best[0] *= 1.5 if key == "eval_moore/return" else 1.0
        np.testing.assert_allclose(moore.scores("best"), best, err_msg=key)


def test_return_report_aggregates_returns_without_an_optimality_gap(tmp_path):
    dirs, finals = minigrid_methods(tmp_path)
    report = app_report.build_report(app_report.load_groups(dirs, metric="return"), reps=200)
    returns = finals["moore"]["eval_moore/return"]
    assert report.metric == "return" and report.statistics == ["IQM", "mean", "median"]
    final = report.summaries[0].intervals["final"]
    assert list(final) == ["IQM", "mean", "median"]
    assert final["IQM"].point == pytest.approx(scipy.stats.trim_mean(returns.ravel(), 0.25))
    assert final["mean"].point == pytest.approx(returns.mean())
    assert final["median"].point == pytest.approx(np.median(returns.mean(axis=0)))
    [improvement] = report.improvements
    assert improvement.interval.point == 0.0  # MT-PPO's MOORE-protocol returns are higher on every task
    assert any(note.startswith("no optimality gap") for note in report.notes)
    success = app_report.build_report(app_report.load_groups(dirs), reps=200)
    assert success.improvements[0].interval.point == 1.0 and "optimality gap" in success.statistics


def test_return_report_files_and_labels_say_return(tmp_path, monkeypatch, capsys):
    dirs, finals = minigrid_methods(tmp_path)
    texts = []
    save = plots._save

    def record_texts(fig, path):
        texts.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text())
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", record_texts)
    out = tmp_path / "out"
    app_report.main([*map(str, dirs), "--out", str(out), "--reps", "50", "--metric", "return"])
    tag = "MiniGrid-MT3_(eval_moore)"
    assert {p.name for p in out.iterdir()} >= {f"curves_{tag}.png", f"task_return_{tag}.png", "report.md"}
    assert texts and not [t for t in texts if "success" in t.lower()]
    assert "final return per task" in " ".join(texts) and "return (IQM, 95% CI)" in texts
    markdown = (out / "report.md").read_text()
    headings = [line for line in markdown.splitlines() if line.startswith("#")]
    assert "## Final return (95% stratified bootstrap CI)" in headings
    assert "## Probability of improvement, final return" in headings
    assert not [h for h in headings if "success" in h.lower()]
    assert "| IQM | mean | median |" in markdown and "optimality gap |" not in markdown
    per_task = (out / "per_task.csv").read_text().splitlines()
    assert per_task[0] == "group,benchmark,task,final_return_mean,seeds"
    moore = [float(line.split(",")[3]) for line in per_task[1:4]]
    np.testing.assert_allclose(moore, finals["moore"]["eval_moore/return"].mean(axis=0))
    summary = (out / "summary.csv").read_text()
    assert len(summary.splitlines()) == 1 + 2 * 2 * 3 and "optimality gap" not in summary
    printed = capsys.readouterr().out
    assert "Final return over seeds" in printed and "final return" in printed


def test_metric_and_protocol_errors_are_one_line(tmp_path, capsys):
    dirs, _ = minigrid_methods(tmp_path, seeds=2)
    metaworld = write_run(tmp_path / "mt10", mt_sac.Config(), 0, [[0.5] * 4] * 2)  # logs success only
    cases = [
        ([*dirs, "--metric", "reward"], "unknown --metric 'reward'; valid: success, return"),
        ([*dirs, "--protocol", "moore"], "unknown --protocol 'moore'; valid: eval, eval_moore, meta_test"),
        ([metaworld, "--metric", "return"], "logged no eval_moore/return or eval/return or meta_test/return"),
        ([dirs[0], "--protocol", "meta_test"], "moore-0 logged no meta_test/success in metrics.jsonl"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        assert cli.main(["report", *map(str, args), "--out", str(out)]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and message in error, error
        assert not out.exists()
    groups = app_report.load_groups(dirs, metric="return")
    report = app_report.build_report(groups, reps=20, compare_published=True)
    assert report.published_rows == [] and "published figures are success rates" in report.notes[-1]
    report = app_report.build_report(app_report.load_groups(dirs), reps=20, compare_published=True)
    assert report.published_rows == [] and "no published figures" in report.notes[-1]  # none for MiniGrid
