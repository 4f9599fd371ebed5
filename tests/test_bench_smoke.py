"""Every `experiments/bench` script runs end to end at its `--small` size and prints its report.

Each script runs as it would from a shell (`python experiments/bench/<script>.py --small`, from the
repository root, in a fresh interpreter), so an import, a renamed API or a changed signature that breaks a
bench fails here rather than the next time someone measures. Nothing here times anything: the numbers are
the scripts' business; the test only checks the exit status and that the report's lines are there.
Compiling is most of what a small run does, so the scripts run with XLA's cheap CPU code generation
(`FAST_COMPILE`: it halves compile time; the programs stay the same, only slower to run, which does not
matter here), and every launched Python shares the session's JAX compilation cache (conftest.py), so
repeated sessions, and scripts that compile the same programs (update_throughput.py and foundation.py after
architectures.py), are quicker.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "experiments" / "bench"
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
TIMEOUT_S = 900  # a hang guard only: cold (no compilation cache) on a loaded 2-core machine, ~3 min at most

# script -> (flags after --small, patterns its report must contain: regular expressions, multiline)
EXPECTED = {
    "architectures.py": (
        [],
        [
            r"^\s+agent\s+actor params\s+critic params\s+updates/s\s+ms/update\s+speed$",
            r"^\s+mt_sac\s+[\d,]+ \(1\.0x\).* 1\.00x$",
            *(
                rf"^\s+{agent}\s+[\d,]+ \([\d.]+x\)"
                for agent in ("mh_sac", "moore_sac", "care_sac", "paco_sac")
            ),
            *(rf"^\s+{agent}\s+[\d,]+ \([\d.]+x\)" for agent in ("softmod_sac", "hyper_sac")),
            r"^ratios are to mt_sac measured in the same run$",
        ],
    ),
    "crash_resume.py": (
        [],
        [
            r"^reference run: \d+ s, \d+ metric lines$",
            r"^run 0: SIGKILL [\d.]+ s after the first checkpoint \(\d+ lines written\), resumed: identical$",
            r"^1/1 resumed runs matched the uninterrupted run bit for bit \(toy\)$",
        ],
    ),
    "env_throughput.py": (
        [],
        [
            r"^MT1, 1 env \(1 per task\), 2 alternating rounds of 10 vector steps",
            r"^\s+metaworld sync vector env\s+\d+\s+[\d.]+\s+1\.00x",
            *(
                rf"^\s+{backend} backend, {way}\s+\d+\s+[\d.]+\s+[\d.]+x \([\d.]+-[\d.]+\)$"
                for backend in ("official", "native")
                for way in (r"jit\+scan", "per call")
            ),
            r"^ratios are to metaworld's sync vector env measured in the same run$",
        ],
    ),
    "foundation.py": (
        [],
        [
            r"^== Environment throughput",
            r"^\s+native backend, per call\s+\d+\s+[\d.]+\s+[\d.]+x",
            r"^== Update throughput",
            r"^\s+mt_sac:\s+[\d.]+ updates/s .* 1\.00x MT-SAC$",
            r"^\s+moore_sac:\s+[\d.]+ updates/s .* [\d.]+x MT-SAC$",
        ],
    ),
    "gradient_methods.py": (
        [],
        [
            r"hidden \(64, 64\)",
            r"^\s+mt_sac\s+mean:\s+[\d.]+ updates/s .* 1\.00x mean$",
            *(
                rf"^\s+mt_sac\s+{method}:\s+[\d.]+ updates/s .* [\d.]+x mean$"
                for method in ("pcgrad", "cagrad", "gradnorm", "famo", "aligned_mtl")
            ),
        ],
    ),
    "minigrid_networks.py": (
        [],
        [
            r"1 epochs × 2 minibatches of 32 = 2 Adam steps$",
            r"^\s+patches: first call \(with compile\)\s+[\d.]+ s, update\s+[\d.]+ s$",
            r"^\s+lax: first call \(with compile\)\s+[\d.]+ s, update\s+[\d.]+ s$",
            r"^time per update: patches [\d.]+ s, lax [\d.]+ s; lax / patches = [\d.]+x$",
        ],
    ),
    "minigrid_throughput.py": (
        [],
        [
            r"^MiniGrid-MT3 \(3 tasks\)",
            r"^farama \(python loop, 1 env per task\):\s+[\d,]+ env-steps/s\s+1\.00x$",
            r"^port,\s+1 env\(s\) per task:\s+[\d,]+ env-steps/s\s+[\d.]+x\s+\(compile [\d.]+ s\)$",
        ],
    ),
    "native_throughput.py": (
        ["--profile"],  # the host-call split too: it has code of its own
        [
            r"^config\s+envs\s+metaworld\s+native\s+physics\s+phys\+reset\s+rollout\s+native/mw",
            r"^MT1x2\s+2(\s+\d+){5}(\s+[\d.]+){3}$",  # every runner, mujoco.rollout included
            r"^\s+per vector step: total \d+ us, host call \d+ us \(physics \d+ us\)",
            r"^env-steps/s; metaworld = gym.make_vec sync",
        ],
    ),
    "seeds_in_one_program.py": (
        [],
        [
            r"^env\s+seeds\s+ms/iteration\s+vs 1 seed\s+speed-up$",
            *(rf"^{env}\s+1\s+[\d.]+\s+1\.00x\s+1\.00x$" for env in ("native", "toy")),
            *(rf"^{env}\s+2\s+[\d.]+\s+[\d.]+x\s+[\d.]+x$" for env in ("native", "toy")),
        ],
    ),
    "update_throughput.py": (
        [],
        [
            r"batch 320, hidden 64x2",
            r"^\s+mt_sac:\s+[\d.]+ updates/s .* 1\.00x MT-SAC$",
            r"^\s+mh_sac:\s+[\d.]+ updates/s .* [\d.]+x MT-SAC$",
            r"^\s+moore_sac:\s+[\d.]+ updates/s .* [\d.]+x MT-SAC$",
        ],
    ),
}


def test_every_bench_script_has_a_smoke_run():
    assert sorted(p.name for p in BENCH.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED), ids=lambda name: name.removesuffix(".py"))
def test_bench_script_small(script):
    flags, patterns = EXPECTED[script]
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--small", *flags],
        cwd=ROOT,
        env={**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    output = result.stdout
    context = f"stdout:\n{output[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"{script} --small exited with {result.returncode}\n{context}"
    missing = [pattern for pattern in patterns if not re.search(pattern, output, re.MULTILINE)]
    assert not missing, f"{script} --small: no line matches {missing}\n{context}"
