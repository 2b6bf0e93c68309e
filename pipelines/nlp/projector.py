"""Learned token vectors for TensorBoard's embedding projector: checkpoint, metadata and config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

TENSOR_NAME = "embedding/.ATTRIBUTES/VARIABLE_VALUE"  # the variable's name in a tf.train.Checkpoint


def shown(token: str) -> str:
    """A token as one metadata line: the projector reads one token per line and tabs as columns."""
    return (token.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")) or "<pad>"


def write(log_dir: Path, vectors: np.ndarray, tokens: list[str]) -> None:
    """One embedding (``vectors[i]`` belongs to ``tokens[i]``) in ``log_dir``, replacing an earlier one."""
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "metadata.tsv").write_text("".join(f"{shown(t)}\n" for t in tokens), encoding="utf-8")
    checkpoint = tf.train.Checkpoint(embedding=tf.Variable(np.asarray(vectors, np.float32)))
    path = checkpoint.write(str(log_dir / "embedding.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = TENSOR_NAME
    embedding.metadata_path = "metadata.tsv"
    config.model_checkpoint_path = Path(path).name
    projector.visualize_embeddings(str(log_dir), config)
