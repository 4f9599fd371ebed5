"""Fixtures shared between test modules (their plain helpers: helpers.py), and how tests compile.

The tests' programs are small and run briefly, so on CPU compiling them is much of the suite's time: every
Python a test launches (`mtrl train` in a subprocess, a fresh interpreter) shares one persistent JAX
compilation cache for the session. XLA's optimisation level stays the default, so the tests' numbers are the
ones users get (at -O0 rounding moves enough to cross tolerances set for the default).
"""

from __future__ import annotations

import os

import helpers
import jax
import pytest

from mtrl import video

video.prefer_headless_gl()  # no display in tests: MuJoCo renders with EGL, chosen before its import

COMPILATION_CACHE = {
    # every program, however quick to compile (the default keeps only those over a second)
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    # a size limit bounds the folder and makes JAX lock it, so concurrent processes never read half an entry
    "JAX_COMPILATION_CACHE_MAX_SIZE": str(2 * 1024**3),
}


@pytest.fixture(scope="session", autouse=True)
def subprocess_compilation_cache(request, tmp_path_factory):
    """Points the JAX of every launched Python at one compilation cache (this process's JAX read its
    environment at import and is unaffected). The folder is pytest's cache when it has one, so later
    sessions start warm; a session temporary folder otherwise."""
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR")  # one the caller chose is kept
    if folder is None:
        cache = getattr(request.config, "cache", None)
        folder = cache.mkdir("jax-compilation-cache") if cache is not None else tmp_path_factory.mktemp("jax")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(folder))
        for name, value in COMPILATION_CACHE.items():
            patch.setenv(name, os.environ.get(name, value))
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
