import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.core.stages import batched, listed, statistics_pass, stratified_split, zip_listed


def test_stratified_split_keeps_class_balance_and_covers_everything():
    labels = np.repeat(np.arange(4), 50)
    parts = stratified_split(labels, {"test": 0.2, "validation": 0.1}, seed=0)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(200))
    for name, expected in (("test", 10), ("validation", 5), ("train", 35)):
        assert np.bincount(labels[parts[name]]).tolist() == [expected] * 4
    again = stratified_split(labels, {"test": 0.2, "validation": 0.1}, seed=0)
    assert all((parts[k] == again[k]).all() for k in parts)


def test_stratified_split_too_small():
    with pytest.raises(UserError, match="too few examples"):
        stratified_split(np.array([0, 1]), {"test": 0.2}, seed=0)


def test_batched_is_deterministic_under_a_seed_and_keeps_every_example():
    ds = tf.data.Dataset.range(100).map(lambda i: (i, i % 3))

    def epoch(seed):
        out = batched(ds, batch_size=16, training=True, seed=seed, preprocess=lambda x, y: (x * 2, y))
        return np.concatenate([x.numpy() for x, _ in out])

    first = epoch(1)
    assert sorted(first.tolist()) == list(range(0, 200, 2))
    assert (epoch(1) == first).all()
    assert not (epoch(2) == first).all()
    evaluation = batched(ds, batch_size=16, training=False, seed=0, per_batch=lambda x, y: (tf.cast(x, tf.float32), y))
    values = np.concatenate([x.numpy() for x, _ in evaluation])
    assert values.dtype == np.float32 and values.tolist() == list(range(100))


def test_per_example_randomness_is_fresh_each_epoch_and_repeatable():
    def draws(seed):
        ds = batched(
            tf.data.Dataset.range(6),
            batch_size=6,
            training=False,
            seed=seed,
            cache=True,
            per_example=lambda x, seed: tf.random.stateless_uniform([], seed),
        )
        return [next(iter(ds)).numpy() for _ in range(2)]  # two epochs

    first, second = draws(3)
    assert not np.allclose(first, second)  # a new epoch, new draws
    np.testing.assert_array_equal(draws(3)[0], first)  # the same seed, the same draws
    assert not np.allclose(draws(4)[0], first)


def test_a_worker_share_preprocesses_only_its_own_examples_in_its_part_of_the_batch():
    decoded = []

    def decode(i):  # records what it decodes: a worker's share is taken before anything is decoded
        return tf.py_function(lambda x: decoded.append(int(x)) or x, [i], tf.int64)

    def share(worker: int) -> list[list[int]]:
        ds = batched(tf.data.Dataset.range(10), batch_size=5, training=False, seed=0, preprocess=decode)
        return [b.numpy().tolist() for b in ds.worker_share(worker, 2)]

    # the examples of its places in each global batch of 5: places 0-2 for worker 0, 3-4 for worker 1
    assert share(0) == [[0, 1, 2], [5, 6, 7]] and sorted(decoded) == [0, 1, 2, 5, 6, 7]
    decoded.clear()
    assert share(1) == [[3, 4], [8, 9]] and sorted(decoded) == [3, 4, 8, 9]
    whole = batched(tf.data.Dataset.range(10), batch_size=5, training=False, seed=0)
    assert [b.numpy().tolist() for b in whole] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]  # one process: unchanged


def test_workers_draw_different_random_numbers_for_their_examples():
    ds = batched(
        tf.data.Dataset.range(4),
        batch_size=4,
        training=False,
        seed=0,
        per_example=lambda x, seed: seed[0],
    )
    first, second = (next(iter(ds.worker_share(w, 2))).numpy().tolist() for w in (0, 1))
    whole = next(iter(ds)).numpy().tolist()
    assert sorted(first + second) == sorted(whole)  # the seeded sequence's draws, dealt out


def test_a_worker_reads_only_the_files_of_its_share_of_a_listed_source():
    read = []

    def load(path, label):  # a source's reading of a file: the share is dealt out from the list, before it
        return tf.py_function(lambda p: read.append(p.numpy().decode()) or 0.0, [path], tf.float32), label

    paths = tf.data.Dataset.from_tensor_slices(([f"{i}.wav" for i in range(6)], list(range(6))))
    source = listed(paths, load)
    ds = batched(source, batch_size=4, training=False, seed=0, cache=False)
    labels = [y.numpy().tolist() for _, y in ds.worker_share(1, 2)]
    assert labels == [[2, 3]] and sorted(read) == ["2.wav", "3.wav"]  # places 2-3 of the batches of 4
    read.clear()
    assert [y.numpy().tolist() for _, y in ds] == [[0, 1, 2, 3], [4, 5]] and len(read) == 6  # one process

    transcripts = tf.data.Dataset.from_tensor_slices([f"t{i}" for i in range(6)])
    zipped = batched(zip_listed(source, transcripts), batch_size=2, training=False, seed=0, cache=False)
    read.clear()
    found = [t.numpy().tolist() for (_, _), t in zipped.worker_share(0, 2)]
    assert found == [[b"t0"], [b"t2"], [b"t4"]] and sorted(read) == ["0.wav", "2.wav", "4.wav"]


def test_a_pass_over_a_share_takes_one_process_s_batches_or_one_fewer():
    ds = batched(tf.data.Dataset.range(10), batch_size=4, training=False, seed=0)  # one process: 3 batches
    shares = [[b.numpy().tolist() for b in ds.worker_share(w, 3)] for w in range(3)]
    assert shares == [[[0, 1], [4, 5], [8, 9]], [[2], [6]], [[3], [7]]]  # the last batch of 2 fills places 0-1 only


def test_statistics_read_the_split_itself_in_one_process_and_without_its_cache_in_a_cluster():
    def cached(ds) -> bool:
        return b"CacheDataset" in ds._as_serialized_graph().numpy()

    ds = batched(tf.data.Dataset.range(6), batch_size=4, training=False, seed=0)
    assert statistics_pass(ds) is ds and cached(ds)  # the pass fills the cache that training then reads
    assert not cached(ds.uncached()) and [b.numpy().tolist() for b in ds.uncached()] == [[0, 1, 2, 3], [4, 5]]
