"""A plain (non-editable) `pip install .` gives `import mtrl.envs, mtrl.agents`; no top-level envs/agents.

CI checks what the install is made of: pyproject's package list and folder mapping against the source tree,
the console script, and that no module imports the checkout-only names `envs`/`agents`. Building the wheel
and installing it into a fresh venv, which shows the same omissions the slow way, is `pytest -m slow`.
"""

import ast
import importlib
import os
import site
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SOURCE_ROOTS = {"mtrl": ROOT / "mtrl", "mtrl.envs": ROOT / "envs", "mtrl.agents": ROOT / "agents"}


@pytest.mark.slow
def test_plain_install_into_fresh_venv_imports_subpackages():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        venv.create(tmp / "venv", with_pip=True)
        python = tmp / "venv" / "bin" / "python"
        # Dependencies come from this environment (a .pth line), mtrl itself from a wheel built now.
        target = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        deps = [p for p in site.getsitepackages() if "site-packages" in p]
        (Path(target) / "deps.pth").write_text("\n".join(deps) + "\n")
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", ROOT],
            check=True,
            env=env,
            cwd=tmp,
        )
        [wheel] = (tmp / "dist").glob("mtrl-*.whl")
        subprocess.run(
            [python, "-m", "pip", "install", "--no-deps", "-q", wheel], check=True, env=env, cwd=tmp
        )
        probe = (
            "import mtrl, mtrl.envs, mtrl.agents, mtrl.app.cli, pathlib;"
            "from mtrl.agents import moore_sac;"
            "from mtrl.envs.metaworld.native import ported_tasks; assert len(ported_tasks()) == 50;"
            "import importlib.util as u;"
            "assert u.find_spec('envs') is None and u.find_spec('agents') is None;"
            "print(pathlib.Path(mtrl.envs.__file__).parent.parent.name)"
        )
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=tmp, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "mtrl"  # mtrl/envs inside the installed package
        assert (tmp / "venv" / "bin" / "mtrl").exists()


def test_every_source_package_is_listed_in_pyproject():
    """A package missing from pyproject's explicit list silently vanishes from `pip install .`."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set()
    for name, root in SOURCE_ROOTS.items():
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            found.add(".".join((name, *parts)))
    assert found == listed, f"missing {sorted(found - listed)}, stale {sorted(listed - found)}"


def test_package_dir_maps_every_listed_package_to_its_source_folder():
    """What setuptools copies into the wheel: each listed package from the folder `package-dir` gives it
    (the longest mapped prefix), all of them inside `mtrl`; and the `mtrl` console script's target."""
    package_dir = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert {name: ROOT / folder for name, folder in package_dir.items()} == SOURCE_ROOTS
    for package in PYPROJECT["tool"]["setuptools"]["packages"]:
        assert package == "mtrl" or package.startswith("mtrl."), package
        prefix = max((p for p in package_dir if package == p or package.startswith(p + ".")), key=len)
        folder = ROOT / package_dir[prefix] / Path(*package[len(prefix) :].split(".")[1:])
        assert (folder / "__init__.py").is_file(), (package, folder)
    module, function = PYPROJECT["project"]["scripts"]["mtrl"].split(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_no_module_imports_the_checkout_only_top_level_names():
    """`envs` and `agents` exist only in a checkout; installed they are `mtrl.envs` and `mtrl.agents`, so an
    absolute import of either works here and fails after `pip install .`."""
    offending = []
    for root in SOURCE_ROOTS.values():
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                else:
                    continue
                top = {name.split(".")[0] for name in names}
                if top & {"envs", "agents"}:
                    offending.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offending, offending


def test_import_mtrl_is_light():
    heavy = "('jax', 'mtrl.envs', 'mtrl.agents', 'mtrl.app')"
    code = f"import sys, mtrl; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_envs_and_agents_import_from_the_repository_root_without_the_install():
    """Python started in the repository root finds ./mtrl before any installed mtrl, and there envs/ and
    agents/ are not inside it: `mtrl.envs` and `mtrl.agents` must still resolve, to the checkout's folders.
    `-S` leaves out site-packages (and with it any installed or editable mtrl)."""
    find = "import importlib.util as u; print(*(u.find_spec(m).origin for m in ('mtrl.envs', 'mtrl.agents')))"
    result = subprocess.run(
        [sys.executable, "-S", "-c", find], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [str(ROOT / "envs" / "__init__.py"), str(ROOT / "agents" / "__init__.py")]


def test_gpu_extras_pin_the_cuda_plugin_to_the_jax_of_the_install():
    """`pip install "mtrl[cuda12]"` must not pull another jax: its CUDA plugin only works with the jaxlib of
    the same version."""
    [jax_pin] = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("jax>")]
    extras = PYPROJECT["project"]["optional-dependencies"]
    for cuda in ("cuda12", "cuda13"):
        assert extras[cuda] == [jax_pin.replace("jax", f"jax[{cuda}]", 1)]
