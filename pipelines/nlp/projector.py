"""Learned token vectors for TensorBoard's embedding projector: checkpoint, metadata and config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

TENSOR_NAME = "embedding/.ATTRIBUTES/VARIABLE_VALUE"  # the variable's name in a tf.train.Checkpoint
METADATA = "projector_metadata.tsv"


def shown(token: str) -> str:
    """A token as one metadata line: the projector reads one token per line and tabs as columns."""
    return (token.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")) or "<pad>"


def write(log_dir: Path, vectors: np.ndarray, tokens: list[str]) -> None:
    """One embedding (``vectors[i]`` belongs to ``tokens[i]``) in ``log_dir``, replacing an earlier one.

    ``log_dir`` must be a TensorBoard run (a folder with event files, such as the run's logs/). The
    checkpoint is found through the ``checkpoint`` state file beside it: a checkpoint path in the
    projector config would be resolved against TensorBoard's working directory, not the log folder.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / METADATA).write_text("".join(f"{shown(t)}\n" for t in tokens), encoding="utf-8")
    checkpoint = tf.train.Checkpoint(embedding=tf.Variable(np.asarray(vectors, np.float32)))
    tf.train.CheckpointManager(checkpoint, str(log_dir), max_to_keep=1, checkpoint_name="embedding").save()
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = TENSOR_NAME
    embedding.metadata_path = METADATA
    projector.visualize_embeddings(str(log_dir), config)
