"""Reusable tf.data stages; :func:`batched` owns the order in which they run.

Every domain feeds Keras through :func:`batched`, so ordering mistakes (shuffling after
batching, caching augmented data, forgetting prefetch) are fixed once, here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from pipelines.core import cluster
from pipelines.core.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE


def stratified_split(labels: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Indices per split, each class divided in the given proportions (the rest goes to 'train').

    >>> parts = stratified_split(np.array([0] * 10 + [1] * 10), {"test": 0.2}, seed=0)
    >>> sorted(len(v) for v in parts.values())
    [4, 16]
    """
    for name, fraction in fractions.items():
        if not 0 < fraction < 1:
            raise UserError(f"the {name} share must be between 0 and 1 (exclusive), got {fraction}")
    if sum(fractions.values()) >= 1:
        raise UserError(f"the held-out shares {fractions} leave nothing to train on; make them smaller")
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {name: [] for name in (*fractions, "train")}
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for name, fraction in fractions.items():
            count = int(round(fraction * len(members)))
            if count == 0 and fraction > 0 and len(members) > len(fractions):
                count = 1  # small classes still reach every split, so no split misses a class
            parts[name].append(members[start : start + count])
            start += count
        parts["train"].append(members[start:])
    split = {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}
    empty = [name for name, idx in split.items() if len(idx) == 0]
    if empty:
        raise UserError(f"too few examples to make a {'/'.join(empty)} split ({len(labels)} in all); add data")
    return split


def batched(
    ds: tf.data.Dataset,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    preprocess: Callable | None = None,
    cache: bool = True,
    shuffle_buffer: int = 10_000,
    per_example: Callable | None = None,
    per_batch: Callable | None = None,
    batch_by: Callable[[tf.data.Dataset, int], tf.data.Dataset] | None = None,
) -> tf.data.Dataset:
    """decode/preprocess -> cache -> shuffle -> per_example -> batch -> per_batch -> prefetch.

    ``batch_by(ds, batch_size)`` batches instead of fixed-size batches (examples of different lengths grouped
    by length, so that padding stays small).

    ``per_example(*element, seed=...)`` is random work on each example after the cache (a
    random crop, added noise). It gets a stateless-RNG ``seed`` (int64 [2]) of its own: fresh
    every epoch, the same sequence for the same ``seed`` argument, and independent of which
    thread of the parallel map runs it. (Stateful ``tf.random`` ops in a map would replay the
    same draws every epoch under a global seed.) ``per_batch`` is cheap deterministic
    vectorised work, such as casting compact cached uint8 images to float.

    The dataset returned has a ``worker_share(worker, workers)``: the same pipeline over one worker's share of
    the examples (:func:`share_of_examples`), taken before this pipeline preprocesses or caches them, and
    before a :func:`listed` source reads them (other sources are read whole), in batches of that worker's share
    of ``batch_size`` (training on several workers reads it: :func:`pipelines.core.training.training_stream`).
    """

    def build(worker: int, workers: int, cached: bool = cache) -> tf.data.Dataset:
        examples, size = ds, batch_size
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        if workers > 1:
            examples, size = share_of_examples(ds, batch_size, worker, workers), share_of(batch_size, worker, workers)
            draws = draws.shard(workers, worker)  # the seeded sequence's draws dealt out, none drawn twice
        return _stages(
            examples, size, draws, training, seed, preprocess, cached, shuffle_buffer, per_example, per_batch, batch_by
        )

    batches = build(0, 1)
    batches.worker_share = build
    batches.uncached = lambda: build(0, 1, cached=False)
    return batches


def statistics_pass(batches: tf.data.Dataset) -> tf.data.Dataset:
    """The split to read whole once, for statistics every worker must share (a normaliser's): the split itself,
    whose cache the pass fills for training; on several workers, which train on shares with caches of their
    own, the split without a cache, so that no worker keeps the whole split in memory."""
    return batches.uncached() if cluster.is_joined() and hasattr(batches, "uncached") else batches


def listed(entries: tf.data.Dataset, read: Callable) -> tf.data.Dataset:
    """``entries.map(read)`` (files read from their paths, examples made from their recipes) that remembers its
    list: a worker's share is then dealt out from the list, so that each worker reads only its own files."""
    examples = entries.map(read, num_parallel_calls=AUTOTUNE, deterministic=True)
    examples.listing = (entries, read)
    return examples


def zip_listed(first: tf.data.Dataset, *others: tf.data.Dataset) -> tf.data.Dataset:
    """``tf.data.Dataset.zip(first, *others)``, still :func:`listed` where ``first`` is."""
    if not hasattr(first, "listing"):
        return tf.data.Dataset.zip(first, *others)
    entries, read = first.listing

    def read_first(entry, *rest):
        return (read(*entry) if isinstance(entry, tuple) else read(entry), *rest)

    return listed(tf.data.Dataset.zip(entries, *others), read_first)


def share_of_examples(ds: tf.data.Dataset, batch_size: int, worker: int, workers: int) -> tf.data.Dataset:
    """The examples that fill ``worker``'s places in each batch of ``batch_size`` (in the split's order), so a pass
    over the share takes as many batches as one process takes over the split, or one fewer where the last batch
    leaves the worker's places empty. Taken from the list, before reading, where ``ds`` is :func:`listed`."""
    first = sum(share_of(batch_size, w, workers) for w in range(worker))
    places = share_of(batch_size, worker, workers)

    def mine(entries: tf.data.Dataset) -> tf.data.Dataset:
        def placed(position, _entry):
            return tf.math.logical_and(position % batch_size >= first, position % batch_size < first + places)

        def entry_only(_position, entry):
            return entry

        return entries.enumerate().filter(placed).map(entry_only)

    if hasattr(ds, "listing"):
        entries, read = ds.listing
        return listed(mine(entries), read)
    return mine(ds)


def share_of(total: int, worker: int, workers: int) -> int:
    """Worker ``worker``'s part of ``total`` split as evenly as whole numbers allow (the first ones get one more).

    >>> [share_of(10, w, 3) for w in range(3)]
    [4, 3, 3]
    """
    return total // workers + (worker < total % workers)


def _stages(
    ds, batch_size, draws, training, seed, preprocess, cache, shuffle_buffer, per_example, per_batch, batch_by
) -> tf.data.Dataset:
    if preprocess is not None:
        # Deterministic parallel map: the same seed gives the same batches in the same order.
        ds = ds.map(preprocess, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        # After decoding, before shuffling: decode once, reshuffle every epoch.
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if per_example is not None:

        def seeded(element, draw):
            parts = element if isinstance(element, tuple) else (element,)
            return per_example(*parts, seed=tf.stack([draw, tf.constant(seed, tf.int64)]))

        ds = tf.data.Dataset.zip((ds, draws)).map(seeded, num_parallel_calls=AUTOTUNE, deterministic=True)
    # Keep the last partial batch: evaluation must see every example, and it is harmless in training.
    ds = batch_by(ds, batch_size) if batch_by is not None else ds.batch(batch_size, drop_remainder=False)
    if per_batch is not None:
        ds = ds.map(per_batch, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)
