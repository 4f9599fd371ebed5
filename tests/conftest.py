"""Fixtures shared between test modules (their plain helpers: helpers.py), and how tests compile.

The tests' programs are small and run briefly, so on CPU compiling them is much of the suite's time: every
Python a test launches (`mtrl train` in a subprocess, a fresh interpreter) shares one persistent JAX
compilation cache for the session, and the test processes use it too for the programs that take over a second
to compile (files compile some of the same programs: nine SAC and CLI test files ran 3-7 % faster with it;
caching every small program as well made the whole suite slower, from writing them all). XLA's
optimisation level stays the default, so the tests' numbers are the ones users get (at -O0 rounding moves
enough to cross tolerances set for the default).
"""

from __future__ import annotations

import contextlib
import os

import helpers
import jax
import pytest

from mtrl import video

video.prefer_headless_gl()  # no display in tests: MuJoCo renders with EGL, chosen before its import

COMPILATION_CACHE = {  # for the launched Pythons
    # every program, however quick to compile (the default keeps only those over a second)
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    # a size limit bounds the folder and makes JAX lock it, so concurrent processes never read half an entry
    "JAX_COMPILATION_CACHE_MAX_SIZE": str(2 * 1024**3),
}


# With `-n 2 --dist loadfile` each worker takes whole files in collection order (pyproject turns off
# xdist's own order, most tests first, which left the few-but-long files for the end). Longest first, the
# two workers finish together. Roughly by their measured durations; the rest keep pytest's order.
LONGEST_FIRST = (
    "test_bench_smoke.py",
    "test_resume.py",
    "test_sweep_slurm.py",
    "test_minigrid_cli.py",
    "test_training.py",
    "test_fidelity.py",
    "test_episodic_training.py",
    "test_gradient_methods.py",
    "test_cli.py",
    "test_agents.py",
    "test_maml.py",
    "test_native_seeds.py",
    "test_env_contract.py",
    "test_metaworld_native.py",
    "test_mt_ppo.py",
    "test_moore_ppo.py",
    "test_pearl.py",
    "test_sweep.py",
    "test_minigrid_env.py",
    "test_rl2.py",
    "test_minigrid_transfer.py",
    "test_meta_evaluation.py",
    "test_task_weighting.py",
    "test_metaworld_official.py",
    "test_devices.py",
    "test_architectures.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole, in order


@pytest.fixture(scope="session", autouse=True)
def compilation_cache_folder(request, tmp_path_factory):
    """One compilation cache for this process and every Python it launches (through the environment, which
    a launched JAX reads at import). The folder is pytest's cache when it has one, so later sessions start
    warm; a session temporary folder otherwise."""
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR")  # one the caller chose is kept
    if folder is None:
        cache = getattr(request.config, "cache", None)
        folder = cache.mkdir("jax-compilation-cache") if cache is not None else tmp_path_factory.mktemp("jax")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(folder))
        for name, value in COMPILATION_CACHE.items():
            patch.setenv(name, os.environ.get(name, value))
        # this process: the same folder, locked the same way, for programs over a second (JAX's default)
        with compilation_cache_settings(
            jax_compilation_cache_dir=str(folder),
            jax_compilation_cache_max_size=int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]),
            jax_persistent_cache_min_compile_time_secs=1.0,
        ):
            yield folder


@contextlib.contextmanager
def compilation_cache_settings(**settings):
    """This process's JAX compilation cache with `settings` (jax.config names) until the block ends."""
    from jax.experimental.compilation_cache import compilation_cache

    before = {name: getattr(jax.config, name) for name in settings}
    for name, value in settings.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()  # it reads the settings when it starts: start it again
    try:
        yield
    finally:
        for name, value in before.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def compile_into_the_subprocess_cache(compilation_cache_folder):
    """For a module whose tests run in this process what they also launch (`mtrl train` in-process as the
    reference, then killed or queued copies of it): while it runs, this process caches every program, as the
    launched runs do, so the copies load all that the reference compiled. (Programs that call back to the
    host, as metaworld's envs do, are never cached.)"""
    minimum = float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"])
    with compilation_cache_settings(jax_persistent_cache_min_compile_time_secs=minimum):
        yield


@pytest.fixture(scope="module", autouse=True)
def release_compiled_programs():
    """Drop each module's compiled programs from memory when it ends: a worker that runs half the suite would
    otherwise hold every executable of it (over 8 GB here) until the end. (The compilation cache on disk
    keeps those that are slow to compile.)"""
    yield
    jax.clear_caches()


@pytest.fixture
def linear_sac():
    """The hand-computed SAC losses' networks and batch (helpers.linear_sac): fresh arrays for each test."""
    return helpers.linear_sac()
