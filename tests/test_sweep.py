"""Sweeps: grid expansion, validation before anything starts, the launcher on real toy runs, W&B export."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from mtrl.agents import AGENTS, mt_sac
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from mtrl import checkpoint, envs
from mtrl.app import cli, sweep_launcher, sweep_plan, wiring
from mtrl.app.config import EnvConfig, TrainConfig, to_json
from mtrl.app.flags import apply_overrides, checked_flags, parse_train_args, to_flags
from mtrl.app.presets import PRESETS, get_preset
from mtrl.app.sweep_grid import Sweep, build_run, expand, read_field, seed_blocks
from mtrl.app.sweep_wandb import parse_agent_args, wandb_sweep_config, write_wandb_yaml
from mtrl.logger import read_metrics, without_wall_clock

MT10_SWEEP = Sweep(
    name="grid",
    base="mt10-moore",
    variants={"moore": {}, "moe": {"agent.use_gram_schmidt": False}},
    grid={"agent.num_experts": [2, 3], "loop.batch_per_task": [16, 32]},
    seeds=[4, 5],
    root=Path("sweeps"),
)


def test_grid_expands_to_every_variant_point_and_seed():
    runs = expand(MT10_SWEEP)
    assert len(runs) == 2 * 2 * 2 * 2  # variants × num_experts × batch × seeds (Meta-World: one run per seed)
    expected = itertools.product(["moore", "moe"], [2, 3], [16, 32], [4, 5])
    for run, (variant, experts, batch, seed) in zip(runs, expected, strict=True):
        config = run.config
        assert (run.variant, run.overrides, run.seeds) == (
            variant,
            {"agent.num_experts": experts, "loop.batch_per_task": batch},
            (seed,),
        )
        preset = get_preset("mt10-moore").agent
        assert config.agent == dataclasses.replace(
            preset, num_experts=experts, use_gram_schmidt=variant == "moore"
        )
        assert config.loop == dataclasses.replace(get_preset("mt10-moore").loop, batch_per_task=batch)
        assert (config.seed, config.num_seeds, config.wandb.group) == (seed, 1, "grid")
        assert run.name == f"{variant}-num_experts={experts}-batch_per_task={batch}-s{seed}"
        assert config.run_dir == Path("sweeps/grid") / run.name


def test_names_are_deterministic_and_toy_seeds_share_one_vmapped_run():
    assert [r.name for r in expand(MT10_SWEEP)] == [r.name for r in expand(MT10_SWEEP)]
    toy = dataclasses.replace(get_preset("quickstart"), env=EnvConfig(name="toy"))
    runs = expand(
        Sweep(name="toy", base=toy, grid={"agent.hidden_sizes": [(8,), (8, 8)]}, seeds=[5, 0, 1, 2])
    )
    assert [r.name for r in runs] == [
        "hidden_sizes=8-s0-2",
        "hidden_sizes=8-s5",
        "hidden_sizes=8x8-s0-2",
        "hidden_sizes=8x8-s5",
    ]
    assert [(r.config.seed, r.config.num_seeds) for r in runs] == [(0, 3), (5, 1)] * 2
    assert seed_blocks([3, 1, 2, 7, 8], together=False) == [(1,), (2,), (3,), (7,), (8,)]
    # Meta-World seeds stay one run each, though the native backend could vmap them (--num-seeds).
    mt1 = dataclasses.replace(toy, env=EnvConfig(name="MT1", task="reach-v3"))
    names = [r.name for r in expand(Sweep(name="mt1", base=mt1, seeds=[0, 1]))]
    assert names == ["s0", "s1"] and wiring.vmaps_seeds(mt1)
    # Which envs vmap is decided without building them; it must agree with the env objects.
    assert envs.make("toy").vmappable and not envs.make("MT1", task="reach-v3").vmappable
    assert envs.make("MT1", task="reach-v3", seeds=2).vmappable


@pytest.mark.parametrize(
    ("variants", "grid", "message"),
    [
        (
            {"a": {}},
            {"agent.num_expert": [4]},
            r"run variant 'a', agent.num_expert=4: unknown field 'agent.num_expert' of moore_sac; "
            r"valid fields: .*num_experts",
        ),
        (
            {"a": {}},
            {"agent.num_experts": [4, "four"]},
            r"run variant 'a', agent.num_experts='four': agent.num_experts='four' is not a valid int",
        ),
        (
            {"a": {}},
            {"agent.num_experts": [4, 500]},
            r"run variant 'a', agent.num_experts=500: agent.num_experts=500: num_experts=500 must be "
            r"between 1",
        ),
        (
            {"a": {"loop.batch_per_task": 0}},
            {},
            r"run variant 'a': loop.batch_per_task must be positive, got 0",
        ),
        (
            {"a": {"env.backend": "gpu"}},
            {},
            r"run variant 'a': env.backend 'gpu' is not available for MT10; valid backends: native, official",
        ),
        (
            {"": {}},
            {"wandb.mode": ["loud"]},
            r"run wandb.mode='loud': wandb.mode='loud' is not valid; valid choices: auto, online",
        ),
        ({"b": {"agent": "sac9"}}, {}, r"run variant 'b': unknown agent 'sac9'"),
        (
            {"b": {"agent": "mt_sac", "agent.num_experts": 4}},
            {},
            r"run variant 'b': unknown field 'agent.num_experts' of mt_sac",
        ),
    ],
)
def test_bad_sweeps_are_refused_naming_the_run_and_the_field(variants, grid, message):
    with pytest.raises(ValueError, match=f"sweep bad, {message}"):
        expand(Sweep(name="bad", base="mt10-moore", variants=variants, grid=grid))


def test_sweep_level_mistakes_are_refused():
    with pytest.raises(ValueError, match="'seed' cannot be swept; set seeds= instead"):
        Sweep(name="x", grid={"seed": [1, 2]})
    with pytest.raises(ValueError, match="seeds must be distinct non-negative ints"):
        Sweep(name="x", seeds=[1, 1])
    with pytest.raises(ValueError, match="must be a non-empty list"):
        Sweep(name="x", grid={"agent.num_experts": 4})
    with pytest.raises(ValueError, match="sweep name 'a/b' must be non-empty"):
        Sweep(name="a/b")
    with pytest.raises(ValueError, match="two runs would both be named 'group=a_b-s0'; rename"):
        expand(Sweep(name="x", base="mt10-moore", grid={"wandb.group": ["a/b", "a_b"]}))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("agent.num_experts", "4", 4),
        ("agent.actor_lr", 4, 4.0),
        ("agent.actor_lr", "3e-4", 3e-4),
        ("agent.use_gram_schmidt", "False", False),
        ("agent.use-gram-schmidt", "true", True),
        ("agent.hidden_sizes", "[64, 64]", (64, 64)),
        ("agent.hidden_sizes", [64], (64,)),
        ("env.max_episode_steps", "None", None),
        ("env.max_episode_steps", "150", 150),
        ("env.task", "reach-v3", "reach-v3"),
        ("wandb.group", "True", "True"),  # a text field keeps text that looks like a literal
        ("wandb.tags", "['a', 'b']", ("a", "b")),
    ],
)
def test_override_values_are_typed_by_the_cli_parser(key, value, expected):
    """Sweep files give Python values, W&B gives text: both go through tyro, as `mtrl train` flags do."""
    got = read_field(apply_overrides(get_preset("mt10-moore"), {key: value}), key)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("agent.num_experts", True, "not a valid int"),
        ("agent.num_experts", 1.5, "not a valid int"),
        ("agent.actor_lr", "x", "not a valid float"),
        ("agent.hidden_sizes", "[1, 'a']", "not a valid list of int"),
        ("agent.num_experts", 500, "representation size"),  # the agent's own check, one line
        ("loop.nope", 1, "unknown field 'loop.nope' of loop; valid fields: steps_per_task"),
    ],
)
def test_override_values_of_the_wrong_type_are_refused_naming_the_field(key, value, message):
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        apply_overrides(get_preset("mt10-moore"), {key: value})
    assert str(refused.value).count("\n") == 0 and key in str(refused.value)


def test_mtrl_train_flags_rebuild_every_config():
    # Every preset with its own agent (episodic and meta-RL agents have theirs), and one preset with every
    # SAC-family agent swapped in and unusual values.
    configs = [dataclasses.replace(get_preset(p), run_dir=Path("r"), seed=2) for p in PRESETS]
    for name in [n for n, module in AGENTS.items() if module.TRAITS.loop == "replay"]:
        configs.append(
            apply_overrides(
                get_preset("mt10-moore"),
                {
                    "agent": name,
                    "agent.hidden_sizes": (8, 4),
                    "agent.target_entropy": -2.5,
                    "wandb.tags": ("a", "b"),
                },
            )
        )
    configs.append(
        apply_overrides(get_preset("quickstart"), {"agent.use_gram_schmidt": False, "env.task": None})
    )
    for config in configs:
        assert parse_train_args(to_flags(config)) == config, config
    custom = dataclasses.replace(get_preset("quickstart"), preset="custom", env=EnvConfig(name="toy"))
    assert checked_flags(custom)[:2] == ["--preset", "quickstart"]


def wandb_args(parameters: dict) -> list[list[str]]:
    """The `${args}` W&B's agent passes for every run of a grid, made by wandb's own code."""
    names = list(parameters)
    grids = [p["values"] if "values" in p else [p["value"]] for p in parameters.values()]
    return [
        create_sweep_command_args({"args": {n: {"value": v} for n, v in zip(names, values, strict=True)}})[
            "args"
        ]
        for values in itertools.product(*grids)
    ]


def test_wandb_sweep_round_trips_to_the_same_typed_runs(tmp_path):
    sweep = Sweep(
        name="wb",
        base="mt10-moore",
        variants={"moore": {}, "mtsac": {"agent": "mt_sac"}},
        grid={
            "agent.hidden_sizes": [(64, 64), (32,)],
            "agent.actor_lr": [3e-4, 1e-3],
            "agent.num_critics": [2],
        },
        seeds=[0, 1],
    )
    path = tmp_path / "sweep.yaml"
    write_wandb_yaml(sweep, "experiments/sweeps/wb.py", path)
    exported = yaml.safe_load(path.read_text())
    assert exported == wandb_sweep_config(sweep, "experiments/sweeps/wb.py")
    assert exported["method"] == "grid" and exported["program"] == "experiments/sweeps/wb.py"
    assert exported["command"] == [
        "${env}",
        "${interpreter}",
        "-m",
        "mtrl.app.sweep",
        "agent",
        "${program}",
        "${args}",
    ]
    assert exported["parameters"]["agent.hidden_sizes"] == {"values": [[64, 64], [32]]}
    local = {r.name: r for r in expand(sweep)}
    seen = set()
    for args in wandb_args(exported["parameters"]):
        variant, seed, overrides = parse_agent_args(args)
        run = build_run(sweep, variant, overrides, seed)
        expected = local[run.name].config
        assert run.config == dataclasses.replace(
            expected, wandb=dataclasses.replace(expected.wandb, mode="online")
        )
        seen.add(run.name)
    assert seen == set(local)  # W&B's grid is exactly the local one
    assert "--agent.hidden_sizes=[64, 64]" in wandb_args(exported["parameters"])[0]


def test_wandb_agent_arguments_are_checked():
    with pytest.raises(ValueError, match="expected --key=value"):
        parse_agent_args(["--seed", "3"])
    with pytest.raises(ValueError, match="missing --seed=N"):
        parse_agent_args(["--variant=a"])
    with pytest.raises(ValueError, match="unknown variant 'x'; valid variants: moore, moe"):
        build_run(MT10_SWEEP, "x", {}, 0)
    with pytest.raises(ValueError, match="agent.num_experts='x' is not a valid int"):
        build_run(MT10_SWEEP, "moore", {"agent.num_experts": "x"}, 0)
    with pytest.raises(ValueError, match="cannot pass on a command line"):
        wandb_sweep_config(Sweep(name="w", grid={"agent": [mt_sac.Config()]}), "f.py")


# ---- the launcher's process pool, with real (trivial) processes ---------------------------------------


def recording_command(record: Path, die_first: bool = False):
    """Each job's process writes its start and end time; with `die_first` its first try SIGKILLs itself."""

    def make(job: sweep_plan.Job) -> list[str]:
        die = (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
            if die_first and not job.restarts
            else ""
        )
        code = f"""
            import time; start = time.time(); {die}
            time.sleep(0.4)
            open({str(record)!r}, "a").write(f"{job.run.name} {{start}} {{time.time()}} {job.action}\\n")
        """
        return [sys.executable, "-c", textwrap.dedent(code)]

    return make


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted(
        [(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1])
    )
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_pool_runs_at_most_jobs_processes_at_once(tmp_path):
    sweep = dataclasses.replace(MT10_SWEEP, root=tmp_path, grid={"agent.num_experts": [1, 2, 3]}, seeds=[0])
    record = tmp_path / "record.txt"
    jobs = sweep_launcher.launch(sweep, jobs=2, poll_s=0.02, make_command=recording_command(record))
    assert [j.status for j in jobs] == ["done"] * 6
    lines = [line.split() for line in record.read_text().splitlines()]
    assert sorted(line[0] for line in lines) == sorted(j.run.name for j in jobs)
    assert max_overlap([(float(a), float(b)) for _, a, b, _ in lines]) == 2
    assert sweep_launcher.default_jobs() == len(os.sched_getaffinity(0))


def test_a_run_killed_from_outside_is_retried_then_given_up(tmp_path):
    sweep = dataclasses.replace(MT10_SWEEP, root=tmp_path, variants={"a": {}}, grid={}, seeds=[0])
    record = tmp_path / "record.txt"
    (job,) = sweep_launcher.launch(sweep, poll_s=0.02, make_command=recording_command(record, die_first=True))
    assert (job.status, job.restarts) == ("done", 1)
    (job,) = sweep_launcher.launch(
        dataclasses.replace(sweep, root=tmp_path / "again"),
        retries=0,
        poll_s=0.02,
        make_command=recording_command(record, die_first=True),
    )
    assert (job.status, job.returncode) == ("failed", -signal.SIGKILL)


def test_a_changed_sweep_is_refused_before_anything_starts(tmp_path):
    (run,) = expand(dataclasses.replace(MT10_SWEEP, root=tmp_path, variants={"a": {}}, grid={}, seeds=[0]))
    run.config.run_dir.mkdir(parents=True)
    (run.config.run_dir / "config.json").write_text(json.dumps(to_json(run.config)))
    assert sweep_plan.inspect(run) == "train"  # no checkpoint yet: starts again
    changed = Sweep(
        name="grid", base="mt10-moore", variants={"a": {"agent.actor_lr": 1e-3}}, seeds=[0], root=tmp_path
    )
    changed_run = dataclasses.replace(expand(changed)[0], name=run.name)
    with pytest.raises(
        ValueError, match=r"run a-s0: the sweep changed .* agent.actor_lr \(0.0003 -> 0.001\)"
    ):
        sweep_plan.inspect(
            dataclasses.replace(
                changed_run, config=dataclasses.replace(changed_run.config, run_dir=run.config.run_dir)
            )
        )


# ---- real toy runs: SIGKILL one, relaunch, it resumes; finished ones are skipped ----------------------

TOY_SWEEP_FILE = """
from pathlib import Path
from mtrl.agents import mt_sac
from mtrl.app.config import EnvConfig, TrainConfig
from mtrl.logger import WandbConfig
from mtrl.app.sweep_grid import Sweep
from mtrl.training import LoopConfig

SWEEP = Sweep(
    name="kill",
    base=TrainConfig(
        agent=mt_sac.Config(hidden_sizes=(16,), initial_alpha=0.1),
        env=EnvConfig(name="toy", envs_per_task=2, toy_num_tasks=2),
        loop=LoopConfig(
            steps_per_task=1_600, warmup_steps_per_task=200, steps_per_iteration=25,
            batch_per_task=16, replay_per_task=2_000, eval_every_steps_per_task=800,
            eval_envs_per_task=10, eval_goals_per_task=10, log_every_steps_per_task=200,
            checkpoint_every_steps_per_task=400,
        ),
        wandb=WandbConfig(mode="disabled"),
        preset="quickstart",
    ),
    # Two variants with identical configs: the killed-and-resumed one must log what the other logs.
    variants={"killed": {}, "whole": {"agent.tau": 0.005}},
    seeds=[0, 1],
    root=Path(__file__).parent,
)
"""


def without_timing(records: list[dict]) -> list[dict]:
    return [without_wall_clock(record) for record in records]


@pytest.fixture(scope="module")
def killed_sweep(tmp_path_factory) -> Path:
    """A toy sweep whose 'killed' run got SIGKILL after its first checkpoint, then was launched again."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "toy.py").write_text(TOY_SWEEP_FILE)
    command = [sys.executable, "-m", "mtrl.app.sweep", str(root / "toy.py"), "--retries", "0", "--jobs", "2"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=root)
    run_dir, pid_file = root / "kill" / "killed-s0-1", root / "kill" / "logs" / "killed-s0-1.pid"
    deadline = time.monotonic() + 300
    while not (pid_file.exists() and checkpoint.steps(run_dir)):
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()[0].decode()[-3000:]
        time.sleep(0.02)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    output = first.communicate(timeout=300)[0].decode()
    assert first.returncode == 1, output[-3000:]
    assert "failed   killed-s0-1 (exit status -9)" in output and "done     whole-s0-1" in output
    whole_table = (root / "kill" / "whole-s0-1" / "success_table.md").stat().st_mtime_ns
    assert cli.main(["sweep", str(root / "toy.py")]) == 0  # in this process: resumes, skips the other
    assert (root / "kill" / "whole-s0-1" / "success_table.md").stat().st_mtime_ns == whole_table
    return root


def test_relaunch_resumes_the_killed_run_exactly_and_skips_the_finished_one(killed_sweep):
    log = (killed_sweep / "kill" / "logs" / "killed-s0-1.log").read_text()
    assert "train --resume" in log
    killed, whole = killed_sweep / "kill" / "killed-s0-1", killed_sweep / "kill" / "whole-s0-1"
    assert "--resume" not in (killed_sweep / "kill" / "logs" / "whole-s0-1.log").read_text()
    assert without_timing(read_metrics(killed)) == without_timing(read_metrics(whole))
    assert (killed / "success_table.md").read_text() == (whole / "success_table.md").read_text()


def test_seeds_of_a_toy_config_trained_in_one_vmapped_program(killed_sweep):
    config = json.loads((killed_sweep / "kill" / "whole-s0-1" / "config.json").read_text())
    assert (config["seed"], config["num_seeds"]) == (0, 2)
    final = read_metrics(killed_sweep / "kill" / "whole-s0-1")[-1]
    assert {"eval/seed0/success", "eval/seed1/success"} <= set(final)


def test_finished_and_evaluate_only_states(killed_sweep, tmp_path):
    import shutil

    sweep = sweep_plan.load_sweep(killed_sweep / "toy.py")
    jobs = sweep_plan.plan(sweep)
    assert [(j.run.name, j.action) for j in jobs] == [("killed-s0-1", "done"), ("whole-s0-1", "done")]
    copy = dataclasses.replace(sweep, root=tmp_path)
    shutil.copytree(killed_sweep / "kill" / "whole-s0-1", tmp_path / "kill" / "whole-s0-1")
    (tmp_path / "kill" / "whole-s0-1" / "success_table.md").unlink()  # killed after its final checkpoint
    assert [j.action for j in sweep_plan.plan(copy)] == ["train", "evaluate"]
    longer = dataclasses.replace(
        copy,
        base=dataclasses.replace(sweep.base, loop=dataclasses.replace(sweep.base.loop, steps_per_task=2_000)),
    )
    job = sweep_plan.plan(longer)[1]
    assert job.action == "resume"  # a larger budget continues the run
    assert sweep_plan.command(job)[3:] == [
        "train",
        "--resume",
        str(job.run_dir),
        "--loop.steps-per-task",
        "2000",
    ]


def test_bad_sweep_file_is_refused_by_the_cli_before_anything_starts(tmp_path, capsys):
    (tmp_path / "bad.py").write_text(TOY_SWEEP_FILE.replace('{"agent.tau": 0.005}', '{"agent.tau": "fast"}'))
    assert cli.main(["sweep", str(tmp_path / "bad.py")]) == 2
    assert (
        "mtrl: error: sweep kill, run variant 'whole': agent.tau='fast' is not a valid float"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "kill").exists()
    assert cli.main(["sweep", str(tmp_path / "none.py")]) == 2
    with pytest.raises(SystemExit) as exited:
        cli.main(["sweep", "--help"])
    assert exited.value.code == 0 and "--wandb-yaml" in capsys.readouterr().out


def test_wandb_agent_entry_point_trains_the_named_run_offline(tmp_path):
    (tmp_path / "toy.py").write_text(TOY_SWEEP_FILE)
    args = ["--variant=whole", "--agent.tau=0.01", "--seed=1", "--wandb.mode=disabled"]
    result = subprocess.run(
        [sys.executable, "-m", "mtrl.app.sweep", "agent", str(tmp_path / "toy.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    config = json.loads((tmp_path / "kill" / "whole-s1" / "config.json").read_text())
    assert (config["seed"], config["num_seeds"], config["agent"]["tau"]) == (1, 1, 0.01)
    assert (tmp_path / "kill" / "whole-s1" / "success_table.md").exists()


def test_example_sweeps_expand():
    toy = sweep_plan.load_sweep(Path(__file__).parents[1] / "experiments/sweeps/toy_methods.py")
    assert [(r.name, r.config.num_seeds, r.config.agent_name) for r in expand(toy)] == [
        ("moore-s0-2", 3, "moore_sac"),
        ("mtsac-s0-2", 3, "mt_sac"),
    ]
    mt10 = sweep_plan.load_sweep(Path(__file__).parents[1] / "experiments/sweeps/mt10_moore_vs_mhsac.py")
    runs = expand(mt10)
    assert len(runs) == 20 and {r.config.agent_name for r in runs} == {"moore_sac", "mh_sac"}
    assert all(r.config.loop.steps_per_task == 2_000_000 and r.config.num_seeds == 1 for r in runs)
    assert get_preset("mt10-moore").agent == runs[0].config.agent
    mhsac = next(r.config for r in runs if r.config.agent_name == "mh_sac")
    assert mhsac.loop == get_preset("mt10-moore").loop and mhsac.env.max_episode_steps == 150
    assert (mhsac.agent.actor_first, mhsac.agent.critic_only_updates) == (True, 1500)
    assert TrainConfig is type(runs[0].config)
    ml10 = sweep_plan.load_sweep(Path(__file__).parents[1] / "experiments/sweeps/ml10_meta_baselines.py")
    runs = expand(ml10)
    assert len(runs) == 30 and {r.config.agent_name for r in runs} == {"maml", "rl2", "pearl"}
    assert {r.config.env.name for r in runs} == {"ML10"}


def test_minigrid_sweeps_chain_each_transfer_run_to_the_multi_task_run_it_starts_from():
    sweeps = Path(__file__).parents[1] / "experiments/sweeps"
    multi_task = expand(sweep_plan.load_sweep(sweeps / "minigrid_moore.py"))
    assert len(multi_task) == 9 and all(r.config.num_seeds == 30 for r in multi_task)
    assert {r.config.preset for r in multi_task} == {
        f"minigrid-{s}-{m}" for s in ("mt3", "mt5", "mt7") for m in ("moore", "moe", "mtppo")
    }
    transfer = expand(sweep_plan.load_sweep(sweeps / "minigrid_moore_transfer.py"))
    assert len(transfer) == 8 and all(r.config.num_seeds == 30 for r in transfer)
    run_dirs = {r.config.preset: str(r.config.run_dir) for r in multi_task}
    for run in transfer:
        agent = run.config.agent
        if run.config.preset.endswith("-noinit"):
            assert agent.experts_from is None and not agent.frozen_experts
            continue
        source = run.config.preset.replace("tl3-5", "mt3").replace("tl5-7", "mt5")
        assert agent.frozen_experts and agent.experts_from == run_dirs[source]
        assert agent.num_experts == get_preset(source).agent.num_experts
