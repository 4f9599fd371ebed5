"""mtrl: multi-task and meta reinforcement learning on JAX.

`import mtrl` stays light: it pulls in neither envs, agents nor the CLI wiring until `train` is called.
"""

__version__ = "0.1.0"


def train(config):
    """Run `config` (an `mtrl.app.config.TrainConfig`) as `mtrl train` would; returns its `RunResult`."""
    from mtrl.app.run import train as run_training

    return run_training(config)
