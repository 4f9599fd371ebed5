"""mtrl: multi-task and meta reinforcement learning on JAX.

`import mtrl` stays light: it pulls in neither the envs, the agents nor the CLI wiring.
"""

__version__ = "0.1.0"
