"""Multi-task torsos: CARE, PaCo, Soft Modularization, hypernetwork; wider/deeper MT-SAC and MH-SAC.

Each network is checked against the paper's definition computed independently (attention and routing
probabilities, composed and generated parameters), its parameter count against the formula written
out by hand, and its task routing. Their agents keep the SAC contract of test_agents (jit, vmap, a critic
that fits a fixed batch, checkpoint); learning the toy tasks with each is slow.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import LEARN, SMALL, SPEC, init, toy_config
from mtrl.agents import care_sac, get_agent, hyper_sac, mh_sac, mt_sac, paco_sac, softmod_sac

from mtrl.app.evaluate import evaluate_run
from mtrl.app.flags import parse_train_args
from mtrl.app.presets import PRESETS
from mtrl.app.run import train as train_run
from mtrl.networks import MLP

T, IN, OUT = 3, 5, 2  # tasks (as in SPEC), input size, output size of the networks under test


@functools.cache
def jitted(module, method=None, mutable=False):
    """One jitted apply per (module, method): repeated shapes reuse the compiled program."""
    return jax.jit(functools.partial(module.apply, method=method, mutable=mutable))


def apply(module, params, *args, mutable=False):
    return jitted(module, mutable=tuple(mutable) if mutable else False)(params, *args)


def dense(i: int, o: int) -> int:
    """Parameters of a dense layer: kernel i×o plus bias o."""
    return i * o + o


def mlp(*sizes: int) -> int:
    return sum(dense(i, o) for i, o in zip(sizes[:-1], sizes[1:], strict=True))


def count(params) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def inputs(batch: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, IN)), jnp.float32)
    return x, jnp.arange(batch, dtype=jnp.int32) % T


def care(**overrides) -> care_sac.Network:
    fields = dict(
        hidden_sizes=(8, 8), output_size=OUT, num_tasks=T, num_encoders=3, encoder_sizes=(6, 4),
        context_sizes=(7, 5), attention_hidden=6, embedding_size=4,
    )  # fmt: skip
    return care_sac.Network(**{**fields, **overrides})


def softmod(**overrides) -> softmod_sac.Network:
    fields = dict(
        hidden_sizes=(8, 6), output_size=OUT, num_tasks=T, num_layers=3, num_modules=2, module_size=4,
        routing_sizes=(7, 5),
    )  # fmt: skip
    return softmod_sac.Network(**{**fields, **overrides})


def paco(**overrides) -> paco_sac.Network:
    return paco_sac.Network(**{**dict(layer_sizes=(8, 6, OUT), num_components=2, num_tasks=T), **overrides})


def hyper(**overrides) -> hyper_sac.Network:
    fields = dict(hidden_sizes=(8, 6), output_size=OUT, num_tasks=T, hyper_sizes=(7, 5), embedding_size=4)
    return hyper_sac.Network(**{**fields, **overrides})


# Where each network keeps what is specific to one task: a [tasks, ...] array, row t for task t.
NETWORKS = {
    "care": (care, ("task_embedding", "embed", "embedding")),
    "softmod": (softmod, ("task_embedding", "kernel")),
    "paco": (paco, ("composition",)),
    "hyper": (hyper, ("task_embedding", "embed", "embedding")),
}


def randomised(params, seed: int):
    """`params` with every leaf redrawn: PaCo starts all tasks equal, which would hide routing bugs."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        tree, [0.5 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    )


def with_row(params, path, target: int, source: int):
    """`params` with row `target` of the task array at `path` replaced by row `source`."""

    def replace(tree, names):
        if not names:
            return tree.at[target].set(tree[source])
        return {**tree, names[0]: replace(tree[names[0]], names[1:])}

    return {"params": replace(params["params"], path)}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_task_routing(name):
    build, path = NETWORKS[name]
    network = build()
    x, task_id = inputs()
    params = randomised(init(network, x, task_id), seed=1)
    out = np.asarray(apply(network, params, x, task_id))
    tid = np.asarray(task_id)
    assert out.shape == (9, OUT) and np.all(np.isfinite(out))
    # a mixed batch gives each row what a batch of that task alone gives it
    for task in range(T):
        rows = np.flatnonzero(tid == task)
        alone = apply(network, params, x[rows], task_id[rows])
        np.testing.assert_allclose(out[rows], alone, rtol=1e-5, atol=1e-6)
    # the task matters, and only through its own row of the task array: copy task 0's row into
    # task 1's, and task-1 rows answer exactly as if they were task 0
    zeros = jnp.zeros_like(task_id)
    as_task_0 = np.asarray(apply(network, params, x, zeros))
    assert not np.allclose(out[tid == 1], as_task_0[tid == 1], atol=1e-4)
    copied = np.asarray(apply(network, with_row(params, path, target=1, source=0), x, task_id))
    np.testing.assert_allclose(copied[tid == 1], as_task_0[tid == 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(copied[tid != 1], out[tid != 1], rtol=1e-5, atol=1e-6)


def test_care_parameter_count_and_attention():
    network = care()
    x, task_id = inputs()
    params = init(network, x, task_id)
    # embedding T×4; context 4-7-5; attention 5-6-k; k encoders IN-6-4; MLP on concat(4 + 5) 8-8-OUT
    k = 3
    expected = T * 4 + mlp(4, 7, 5) + mlp(5, 6, k) + k * mlp(IN, 6, 4) + mlp(4 + 5, 8, 8, OUT)
    assert count(params) == expected
    params = randomised(params, seed=2)
    out, state = apply(network, params, x, task_id, mutable=["intermediates"])
    attention = np.asarray(state["intermediates"]["attention_weights"][0])
    assert attention.shape == (9, k)
    np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-6)
    # reference: the paper's forward pass written out in NumPy from the raw parameters
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    relu = lambda a: np.maximum(a, 0.0)
    lin = lambda a, layer: a @ layer["kernel"] + layer["bias"]
    for b, t in enumerate(np.asarray(task_id)):
        z = lin(relu(lin(p["task_embedding"]["embed"]["embedding"][t], p["context_encoder"]["dense_0"])),
                p["context_encoder"]["dense_1"])  # fmt: skip
        logits = lin(relu(lin(z, p["attention"]["dense_0"])), p["attention"]["dense_1"])
        alpha = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(attention[b], alpha, rtol=1e-4, atol=1e-6)
        enc = p["encoders"]["mlps"]
        encodings = [
            lin(relu(lin(np.asarray(x[b]), jax.tree.map(lambda a, j=j: a[j], enc["dense_0"]))),
                jax.tree.map(lambda a, j=j: a[j], enc["dense_1"]))
            for j in range(k)
        ]  # fmt: skip
        h = np.concatenate([sum(a * e for a, e in zip(alpha, encodings, strict=True)), z])
        mlp_p = p["mlp"]
        expected_out = lin(relu(lin(relu(lin(h, mlp_p["dense_0"])), mlp_p["dense_1"])), mlp_p["dense_2"])
        np.testing.assert_allclose(out[b], expected_out, rtol=1e-4, atol=1e-5)


def test_softmod_parameter_count_and_routing():
    network = softmod()
    x, task_id = inputs()
    params = init(network, x, task_id)
    L, n, m, D, r = 3, 2, 4, 6, 5
    expected = (
        mlp(IN, 8, D)  # state embedding f(s)
        + dense(T, D)  # task embedding h(z) of the one-hot id
        + mlp(D, 7, r)  # routing MLP
        + dense(r, n * n)  # p¹ (eq. 1)
        + dense(1 * n * n, r) + dense(r, n * n)  # p² from [p¹] (eq. 2)
        + dense(2 * n * n, r) + dense(r, n)  # last routing from [p¹, p²]
        + n * dense(D, m) + (L - 1) * n * dense(m, m)  # modules
        + dense(m, OUT)
    )  # fmt: skip
    assert count(params) == expected
    params = randomised(params, seed=3)
    out, state = apply(network, params, x, task_id, mutable=["intermediates"])
    routing = state["intermediates"]["routing_probs"][0]
    last = np.asarray(state["intermediates"]["last_routing_probs"][0])
    assert len(routing) == L - 1 and last.shape == (9, n)
    for p_l in routing:
        assert p_l.shape == (9, n, n)
        np.testing.assert_allclose(np.asarray(p_l).sum(-1), 1.0, rtol=1e-6)  # each module's inputs
    np.testing.assert_allclose(last.sum(-1), 1.0, rtol=1e-6)
    # the module cascade of eq. 3, written out from the routing probabilities and raw parameters
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    relu = lambda a: np.maximum(a, 0.0)
    lin = lambda a, layer: a @ layer["kernel"] + layer["bias"]
    module = lambda layer, j, a: lin(a, jax.tree.map(lambda w: w[j], p[f"modules_{layer}"]))
    for b in range(9):
        f = lin(relu(lin(np.asarray(x[b]), p["state_embedding"]["dense_0"])), p["state_embedding"]["dense_1"])
        g = [module(0, j, relu(f)) for j in range(n)]
        for layer in range(1, L):
            probs = np.asarray(routing[layer - 1][b])
            g = [module(layer, j, relu(sum(probs[j, i] * g[i] for i in range(n)))) for j in range(n)]
        expected_out = lin(relu(sum(last[b, i] * g[i] for i in range(n))), p["output"])
        np.testing.assert_allclose(out[b], expected_out, rtol=1e-4, atol=1e-5)


def test_paco_parameter_count_and_composed_params():
    network = paco()
    x, task_id = inputs()
    params = init(network, x, task_id)
    K = 2
    assert count(params) == K * mlp(IN, 8, 6, OUT) + T * K
    np.testing.assert_allclose(params["params"]["composition"], 1 / np.sqrt(K))
    params = randomised(params, seed=4)
    out = np.asarray(apply(network, params, x, task_id))
    p = jax.tree.map(np.asarray, params["params"])
    for task in range(T):
        composed = paco_sac.compose_params(params, task)
        for layer in ("dense_0", "dense_1", "dense_2"):
            w = p["composition"][task]
            kernel = sum(w[k] * p[layer]["kernel"][k] for k in range(K))  # θ_τ = Σ_k w_τ[k] φ_k
            bias = sum(w[k] * p[layer]["bias"][k] for k in range(K))
            np.testing.assert_allclose(composed["params"][layer]["kernel"], kernel, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(composed["params"][layer]["bias"], bias, rtol=1e-5, atol=1e-6)
        rows = np.asarray(task_id) == task
        plain = apply(MLP((8, 6, OUT)), composed, x[rows])
        np.testing.assert_allclose(out[rows], plain, rtol=1e-4, atol=1e-5)


def test_paco_mask_out_weights():
    losses = jnp.array([1.0, 5e3, jnp.nan, 2.0])
    diverged = paco_sac.diverged_tasks(losses, threshold=3e3)
    np.testing.assert_array_equal(diverged, [False, True, True, False])  # above ε, or not finite
    weights = paco_sac.mask_weights(losses, None, threshold=3e3)
    np.testing.assert_array_equal(
        weights, [1.0, 0.0, 0.0, 1.0]
    )  # the update and w-reset: test_task_weighting


def test_hypernetwork_parameter_count_generated_params_and_init():
    network = hyper()
    x, task_id = inputs()
    params = init(network, x, task_id)
    shapes = [(IN, 8), (8, 6), (6, OUT)]
    heads = sum(dense(5, i * o) + dense(5, o) for i, o in shapes)  # kernel and bias heads on h (m = 5)
    assert count(params) == T * 4 + mlp(4, 7, 5) + heads
    params = randomised(params, seed=5)
    out = np.asarray(apply(network, params, x, task_id))
    layers = jax.jit(functools.partial(network.apply, method="generated"), static_argnums=1)(params, IN)
    for task in range(T):
        plain_params = {
            "params": {f"dense_{i}": {"kernel": k[task], "bias": b[task]} for i, (k, b) in enumerate(layers)}
        }
        rows = np.asarray(task_id) == task
        np.testing.assert_allclose(
            out[rows], apply(MLP((8, 6, OUT)), plain_params, x[rows]), rtol=1e-4, atol=1e-5
        )


def test_hypernetwork_init_gives_lecun_scaled_kernels():
    # hyperfan-in: Var(W) = Σ_j h_j² Var(H) = m / (m · fan_in) exactly, given the LayerNorm's Σ h² = m
    fan_in, width = 64, 64
    network = hyper(hidden_sizes=(width,), hyper_sizes=(32, 32), num_tasks=4)
    x = jnp.zeros((1, fan_in))
    params = init(network, x, jnp.zeros((1,), jnp.int32), seed=6)
    layers = jax.jit(functools.partial(network.apply, method="generated"), static_argnums=1)(params, fan_in)
    kernel, bias = layers[0]
    assert kernel.shape == (4, fan_in, width)
    np.testing.assert_array_equal(bias, 0.0)
    for task_kernel in np.asarray(kernel):  # 4096 entries per task: the variance to within ~10 %
        assert abs(task_kernel.var() * fan_in - 1.0) < 0.1, task_kernel.var() * fan_in


@pytest.mark.parametrize(
    "agent, kwargs, expected",
    [
        (mt_sac, {"hidden_sizes": (64,)}, lambda i, o: mlp(i, 64, o)),
        (mt_sac, {"hidden_sizes": (1024, 1024)}, lambda i, o: mlp(i, 1024, 1024, o)),
        (mt_sac, {"hidden_sizes": (32,) * 6}, lambda i, o: mlp(i, *(32,) * 6, o)),
        (mh_sac, {"hidden_sizes": (1024, 1024)}, lambda i, o: mlp(i, 1024, 1024) + T * dense(1024, o)),
        (mh_sac, {"hidden_sizes": (32,) * 6}, lambda i, o: mlp(i, *(32,) * 6) + T * dense(32, o)),
    ],
    ids=["mt-narrow", "mt-wide", "mt-deep", "mh-wide", "mh-deep"],
)  # fmt: skip
def test_width_and_depth_are_plain_config(agent, kwargs, expected):
    networks = agent.make_networks(SPEC, agent.Config(**kwargs))
    obs, act = SPEC.obs_size, SPEC.action_size
    x, task_id = jnp.zeros((1, obs)), jnp.zeros((1,), jnp.int32)
    assert count(jax.eval_shape(networks.actor.init, jax.random.key(0), x, task_id)) == expected(obs, 2 * act)
    x = jnp.zeros((1, obs + act))
    assert count(jax.eval_shape(networks.critic.init, jax.random.key(0), x, task_id)) == expected(
        obs + act, 1
    )


TOY_AGENTS = {
    "care_sac": care_sac.Config(**SMALL, num_encoders=3, encoder_sizes=(32, 32), context_sizes=(32, 32),
                                attention_hidden=32, embedding_size=16),
    "paco_sac": paco_sac.Config(**SMALL, num_components=3),
    "softmod_sac": softmod_sac.Config(**SMALL, module_size=32, routing_sizes=(32, 32)),
    "hyper_sac": hyper_sac.Config(**SMALL, hyper_sizes=(32, 32), embedding_size=8),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TOY_AGENTS))
def test_agent_learns_toy_tasks_and_checkpoint_round_trips(name, tmp_path):
    """The budget of test_training's learning test; the restored checkpoint re-evaluates identically.

    Slow (about a minute each on 2 cores): CI learns with MT-SAC only (test_training); every torso's update
    fits its critic to a fixed batch (test_agents), and its state round-trips through a checkpoint."""
    config = toy_config(TOY_AGENTS[name], LEARN, run_dir=tmp_path / "run")
    result = train_run(config)
    assert result.mean_success >= 0.9, result.success_per_task
    assert evaluate_run(result.run_dir).success_per_task == result.success_per_task


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: paco_sac.make_networks(SPEC, paco_sac.Config(num_components=4)), "num_components=4"),
        (lambda: paco_sac.Config(num_components=0), "num_components must be >= 1"),
        (lambda: softmod_sac.Config(num_modules=0), "num_modules must be >= 1"),
        (lambda: softmod_sac.Config(num_layers=0), "num_layers must be >= 1"),
        (lambda: softmod_sac.Config(routing_sizes=()), "routing_sizes"),
        (lambda: care_sac.Config(num_encoders=0), "num_encoders must be >= 1"),
        (lambda: care_sac.Config(encoder_sizes=(50, 0)), "encoder_sizes"),
        (lambda: care_sac.Config(task_embedding="bert"), "'bert'; valid choices: learned, text"),
        (lambda: hyper_sac.Config(hyper_sizes=()), "hyper_sizes"),
    ],
    ids=["paco-k-above-tasks", "paco-k-zero", "softmod-modules", "softmod-layers", "softmod-routing",
         "care-encoders", "care-encoder-width", "care-embedding", "hyper-sizes"],
)  # fmt: skip
def test_bad_sizes_give_one_line_errors(make, message):
    with pytest.raises(ValueError, match=message) as error:
        make()
    assert len(str(error.value).splitlines()) == 1


def test_network_level_checks_refuse_zero_sizes():
    x, task_id = inputs()
    with pytest.raises(ValueError, match="num_modules must be >= 1"):
        init(softmod(num_modules=0), x, task_id)
    with pytest.raises(ValueError, match="num_encoders must be >= 1"):
        init(care(num_encoders=0), x, task_id)
    with pytest.raises(ValueError, match="num_components=4 must be between 1 and the number of tasks 3"):
        init(paco(num_components=4), x, task_id)


@pytest.mark.parametrize(
    "preset, agent_name",
    [("mt10-care", "care_sac"), ("mt10-paco", "paco_sac"), ("mt10-softmod", "softmod_sac"),
     ("mt10-hyper", "hyper_sac")],
)  # fmt: skip
def test_presets_and_cli_reach_the_new_agents(preset, agent_name):
    config = parse_train_args(["--preset", preset])
    assert config.agent_name == agent_name and config.loop.batch_per_task == 128 and config.env.name == "MT10"
    assert preset in PRESETS
    swapped = parse_train_args(["--preset", "mt10-moore", "--agent", agent_name])
    assert swapped.agent_name == agent_name and swapped.agent == get_agent(agent_name).Config()
    field = {"care_sac": "num-encoders", "paco_sac": "num-components", "softmod_sac": "num-modules",
             "hyper_sac": "embedding-size"}[agent_name]  # fmt: skip
    overridden = parse_train_args(["--preset", preset, f"--agent.{field}", "3"])
    assert getattr(overridden.agent, field.replace("-", "_")) == 3


def test_published_mt10_defaults():
    c = care_sac.Config()
    assert (c.num_encoders, c.encoder_sizes, c.context_sizes, c.attention_hidden) == (
        4,
        (50, 50),
        (50, 50),
        50,
    )
    assert c.hidden_sizes == (400, 400, 400) and c.task_embedding == "learned"
    assert paco_sac.Config().num_components == 5 and paco_sac.Config().hidden_sizes == (400, 400, 400)
    soft = softmod_sac.Config()
    assert (soft.num_layers, soft.num_modules, soft.module_size, soft.hidden_sizes) == (2, 2, 256, (400, 400))
    assert soft.routing_sizes == (256, 256)
