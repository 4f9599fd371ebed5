"""A plain (non-editable) `pip install .` gives `import mtrl.envs, mtrl.agents`; no top-level envs/agents."""

import os
import site
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    roots = {"mtrl": ROOT / "mtrl", "mtrl.envs": ROOT / "envs", "mtrl.agents": ROOT / "agents"}
    found = set()
    for name, root in roots.items():
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            found.add(".".join((name, *parts)))
    assert found == listed, f"missing {sorted(found - listed)}, stale {sorted(listed - found)}"


def test_import_mtrl_is_light():
    heavy = "('jax', 'mtrl.envs', 'mtrl.agents', 'mtrl.app')"
    code = f"import sys, mtrl; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
