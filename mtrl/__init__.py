"""mtrl: multi-task and meta reinforcement learning on JAX.

`import mtrl` stays light: it pulls in neither envs, agents nor the CLI wiring until `train` is called.
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

# Installed, envs/ and agents/ live inside this package as mtrl.envs and mtrl.agents. In a source checkout
# they sit beside it, and Python started in the repository root imports this folder rather than the
# installed package: searching the repository root for sub-packages too keeps `mtrl.envs` and
# `mtrl.agents` importable there.
_checkout = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "agents").is_dir() and (_checkout / "agents" / "__init__.py").is_file():
    __path__.append(str(_checkout))


def train(config):
    """Run `config` (an `mtrl.app.config.TrainConfig`) as `mtrl train` would; returns its `RunResult`."""
    from mtrl.app.run import train as run_training

    return run_training(config)
