"""Fixtures shared between test modules (their plain helpers: helpers.py), and how tests compile.

The tests' programs are small and run briefly, so on CPU compiling them is most of the suite's time
(about four fifths in the SAC modules, measured with jax.monitoring's compile events). So every program,
this process's and those of every Python a test launches (`mtrl train` in a subprocess), goes to one
persistent JAX compilation cache for the session: a program compiled again in a later module or a later
subprocess is read back instead. Each module's compiled programs are dropped from memory when it ends.
XLA's options stay the defaults, so the tests' numbers are the ones users get: at -O0, or with XLA:CPU's
fusion emitters off (a third less compile time), rounding moves enough to cross tolerances set for the
defaults (vmapped-vs-separate MAML runs differ by 2.5e-5).
"""

from __future__ import annotations

import os

import helpers
import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

MIN_TIME, MIN_SIZE, MAX_SIZE = (
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
    "JAX_COMPILATION_CACHE_MAX_SIZE",
)
COMPILATION_CACHE = {
    # every program, however quick to compile (the default keeps only those over a second)
    MIN_TIME: "0",
    MIN_SIZE: "0",
    # a size limit bounds the folder and makes JAX lock it, so concurrent processes never read half an entry
    MAX_SIZE: str(2 * 1024**3),
}


@pytest.fixture(scope="session", autouse=True)
def shared_compilation_cache(request, tmp_path_factory):
    """Points this process's JAX, and that of every launched Python, at one compilation cache. The folder
    is pytest's cache when it has one, so later sessions start warm; a session temporary folder otherwise."""
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR")  # one the caller chose is kept
    if folder is None:
        cache = getattr(request.config, "cache", None)
        folder = cache.mkdir("jax-compilation-cache") if cache is not None else tmp_path_factory.mktemp("jax")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(folder))
        for name, value in COMPILATION_CACHE.items():
            patch.setenv(name, os.environ.get(name, value))
        jax.config.update("jax_compilation_cache_dir", str(folder))  # and this process's, alike
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(os.environ[MIN_TIME]))
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", int(os.environ[MIN_SIZE]))
        jax.config.update("jax_compilation_cache_max_size", int(os.environ[MAX_SIZE]))
        compilation_cache.reset_cache()  # collection may have compiled already, before the folder was set
        yield folder


@pytest.fixture(scope="module", autouse=True)
def release_compiled_programs():
    """Drop each module's compiled programs when it ends: test modules share almost none, and a worker that
    runs half the suite would otherwise hold every executable of it (over 8 GB here) until the end."""
    yield
    jax.clear_caches()


@pytest.fixture
def linear_sac():
    """The hand-computed SAC losses' networks and batch (helpers.linear_sac): fresh arrays for each test."""
    return helpers.linear_sac()
