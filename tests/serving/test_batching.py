"""The batcher gathers concurrent requests into one call and gives each caller its own rows."""

import threading

import numpy as np

from apps.serving.batching import Batcher


def doubled(inputs):
    return {"y": inputs["x"] * 2, "n": np.full(len(inputs["x"]), len(inputs["x"]))}


def submit_together(batcher, requests):
    """Each (call, inputs) from its own thread at the same moment; their results in order."""
    start, results = threading.Barrier(len(requests)), [None] * len(requests)

    def client(i, call, inputs):
        start.wait()
        future = batcher.submit(call, inputs, batchable=True)
        try:
            results[i] = future.result(timeout=30)
        except Exception as err:
            results[i] = err

    threads = [threading.Thread(target=client, args=(i, *r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_concurrent_requests_share_calls_and_get_their_own_rows():
    batcher = Batcher(max_batch_size=64, max_wait=0.2)
    requests = [(doubled, {"x": np.arange(i, i + 3, dtype=np.float32)[:, None]}) for i in range(16)]
    results = submit_together(batcher, requests)
    batcher.close()
    for (_, inputs), out in zip(requests, results):
        np.testing.assert_array_equal(out["y"], inputs["x"] * 2)
    assert batcher.stats.requests == 16
    assert batcher.stats.calls < 16 and batcher.stats.largest_batch > 3  # gathered, not one by one
    assert batcher.stats.largest_batch <= 64


def test_a_batch_never_exceeds_its_size_and_shapes_are_never_mixed():
    batcher = Batcher(max_batch_size=4, max_wait=0.2)
    requests = [(doubled, {"x": np.ones((2, 1 + i % 2), np.float32)}) for i in range(8)]
    results = submit_together(batcher, requests)
    batcher.close()
    for (_, inputs), out in zip(requests, results):
        assert out["y"].shape == inputs["x"].shape
        assert out["n"].max() <= 4  # the call saw at most 4 examples
    assert batcher.stats.largest_batch <= 4


def test_one_failing_request_does_not_fail_the_others():
    def picky(inputs):
        if (inputs["x"] < 0).any():
            raise ValueError("negative input")
        return {"y": inputs["x"] + 1}

    batcher = Batcher(max_batch_size=64, max_wait=0.2)
    requests = [(picky, {"x": np.array([[-1.0 if i == 3 else float(i)]], np.float32)}) for i in range(8)]
    results = submit_together(batcher, requests)
    batcher.close()
    assert isinstance(results[3], ValueError)
    for i, out in enumerate(results):
        if i != 3:
            assert out["y"].tolist() == [[i + 1.0]]
