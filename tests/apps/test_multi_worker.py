"""train.strategy=multi_worker: two worker processes on 127.0.0.1, as TF_CONFIG describes them (as on two
machines) and as train.workers=2 starts them; a lost worker, --resume, and the bad input of a cluster."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.core import cluster
from pipelines.domains import tasks
from tests.contract.test_contract import pipeline_of, task_args, train_args
from tests.helpers import REPO, assert_one_line_error, dlapps, optimizer_steps, same_weights, wait_for_epoch

TINY = ["train.epochs=2", "model.width=8", "eval.sample_images=4"]  # digits: 21 steps of a global batch of 64
MULTI = ["train.strategy=multi_worker"]


def sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


def worker(tmp_path: Path, tf_config: str | None, *args) -> subprocess.Popen:
    """``dlapps *args`` in a process of its own, with ``TF_CONFIG`` and temporary files under tmp_path/tmp."""
    return python(tmp_path, tf_config, "-m", "apps.cli", *args)


def python(tmp_path: Path, tf_config: str | None, *args) -> subprocess.Popen:
    environment = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    environment.pop("TF_CONFIG", None)
    if tf_config:
        environment["TF_CONFIG"] = tf_config
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def two_workers(tmp_path: Path, script: str, *args) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of ``python -c script *args`` run as worker 0 and worker 1 of one cluster on
    127.0.0.1; a ``{worker}`` among ``args`` becomes each worker's number."""
    ports = cluster.free_ports(2)
    workers = [
        python(tmp_path, cluster.local_cluster(ports, index), "-c", script, *(a.format(worker=index) for a in args))
        for index in (0, 1)
    ]
    outputs = [process.communicate(timeout=120) for process in workers]
    return [(process.returncode, out, err) for process, (out, err) in zip(workers, outputs)]


@pytest.fixture
def tmp(tmp_path):
    (tmp_path / "tmp").mkdir()
    return tmp_path


def digests(text: str) -> list[str]:
    return re.findall(r"weights at the end of training: (\w+)", text)


@pytest.mark.parametrize("domain", ["vision", "generative"])  # Keras' fit, and a GAN's own train_step
def test_two_workers_of_tf_config_train_one_run_and_end_with_the_same_weights(domain, tmp):
    ports = cluster.free_ports(2)
    settings = (
        TINY if domain == "vision" else [*pipeline_of(domain, "generate").example_settings, "train.batch_size=16"]
    )
    args = [domain, "train", "--runs-dir", tmp / "runs", "--name", "r", *sets(*settings, *MULTI)]
    workers = [worker(tmp, cluster.local_cluster(ports, index), *args) for index in (0, 1)]
    chief, other = (process.communicate(timeout=300) for process in workers)
    assert [process.returncode for process in workers] == [0, 0], (chief[1], other[1])
    assert "2 replicas: global batch" in chief[1]
    assert len(digests(chief[1])) == 1 and digests(chief[1]) == digests(other[1])  # the same model on both
    assert "worker 1 trained 2 epochs; the chief wrote the run directory" in other[1]
    assert [p.name for p in (tmp / "runs" / domain).iterdir()] == ["r"]
    run = tmp / "runs" / domain / "r"
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert not ours(tmp)  # worker 1's private copy of the run is gone
    assert_one_process_evaluates_alike(domain, run)


def assert_one_process_evaluates_alike(domain: str, run: Path) -> None:
    """The test figures the workers wrote are those one process gets from the run's model and data."""
    trained = json.loads((run / "metrics.json").read_text())
    result = dlapps(domain, "evaluate", run)
    assert result.exit_code == 0, result.output + result.stderr
    again = json.loads((run / "metrics.json").read_text())
    numbers = {key for key, value in trained.items() if isinstance(value, float)}
    assert numbers and {key: again[key] for key in numbers} == pytest.approx({key: trained[key] for key in numbers})


@pytest.mark.skipif(
    os.environ.get("DLAPPS_MULTI_WORKER") != "all",
    reason="every task on two workers takes minutes: DLAPPS_MULTI_WORKER=all (vision and the GAN always run)",
)
@pytest.mark.parametrize("domain, task", tasks(), ids=[f"{d}-{t}" for d, t in tasks()])
def test_every_task_trains_on_two_local_workers(domain, task, tmp):
    pipeline = pipeline_of(domain, task)
    (tmp / "data").mkdir()
    launcher = worker(
        tmp,
        None,
        *[domain, "train", *task_args(domain, task), "--runs-dir", tmp / "runs", "--name", "r"],
        *train_args(pipeline, tmp / "data"),
        *sets(*MULTI, "train.workers=2"),
    )
    _, err = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, err
    run = tmp / "runs" / domain / "r"
    assert [p.name for p in run.parent.iterdir()] == ["r"] and not ours(tmp)
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert_one_process_evaluates_alike(domain, run)


def ours(tmp: Path) -> list[str]:
    """What dlapps left in the temporary folder (TensorFlow's autograph writes there too)."""
    return [p.name for p in (tmp / "tmp").iterdir() if p.name.startswith("dlapps-")]


def test_a_lost_worker_stops_the_others_in_one_line_and_resume_completes(tmp):
    """train.workers=2: the launcher starts both; worker 1 killed mid-epoch stops the chief in one line, the run
    is interrupted, and --resume (the launcher again) completes it with every optimizer step done once."""
    epochs, steps = 8, 4  # of 256 digits: a pass over the split is 6 batches (the last of 15), so epochs cross passes
    run = tmp / "runs" / "vision" / "r"
    settings = [f"train.epochs={epochs}", f"train.steps_per_epoch={steps}", "train.batch_size=256", "model.width=8"]
    settings += [*MULTI, "train.workers=2", "eval.every_epochs=0"]
    launcher = worker(tmp, None, "vision", "train", "--runs-dir", tmp / "runs", "--name", "r", *sets(*settings))
    wait_for_epoch(launcher, run, 2)
    os.kill(worker_pid(tmp, index=1), signal.SIGKILL)
    _, first = launcher.communicate(timeout=120)
    assert launcher.returncode == 2, first
    assert "error: worker 1 was killed by signal 9" in first and "Traceback" not in first
    assert "error: worker 0 lost contact with the other workers" in first
    assert f"start every worker again with: dlapps vision train --resume {run}" in first
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"

    resumed = worker(tmp, None, "vision", "train", "--resume", run)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "Epoch 1/" not in out + err
    assert set(optimizer_steps(run / "model.keras").values()) == {epochs * steps}
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert [p.name for p in (tmp / "runs" / "vision").iterdir()] == ["r"]
    # the failed launch's worker logs, which it named; the killed worker's private copy went with the resume
    left = ours(tmp)
    assert len(left) == 1 and left[0].startswith("dlapps-workers-") and left[0] in first, left
    never_stopped = worker(tmp, None, "vision", "train", "--runs-dir", tmp / "other", "--name", "r", *sets(*settings))
    assert never_stopped.wait(timeout=300) == 0
    assert same_weights(run / "model.keras", tmp / "other" / "vision" / "r" / "model.keras")


def worker_pid(tmp: Path, index: int) -> int:
    """The pid of this test's dlapps worker (its temporary files under ``tmp``) whose TF_CONFIG gives it ``index``:
    another test's workers may run beside it."""
    deadline = time.time() + 30
    while time.time() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                environment = (entry / "environ").read_bytes()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ours = f"TMPDIR={tmp / 'tmp'}\0".encode() in environment + b"\0"
            if ours and b"apps.cli" in command and f'"index": {index}}}'.encode() in environment:
                return int(entry.name)
        time.sleep(0.1)
    raise AssertionError(f"no worker {index}")


def test_a_worker_that_never_comes_is_named_after_a_bounded_wait(tmp):
    port, absent = cluster.free_ports(2)
    tf_config = json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port}", f"127.0.0.1:{absent}"]}, "task": {"type": "worker", "index": 0}}
    )
    started = time.time()
    alone = worker(
        tmp,
        tf_config,
        "vision",
        "train",
        "--runs-dir",
        tmp / "runs",
        *sets(*TINY, *MULTI),
        *sets("train.join_seconds=3"),
    )
    _, err = alone.communicate(timeout=120)
    assert alone.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error: worker 0 waited 3 s for the other workers"), err
    assert f"worker 1 at 127.0.0.1:{absent}" in lines[-1] and "Traceback" not in err
    assert time.time() - started < 60
    assert not (tmp / "runs").exists()


BAD_CLUSTERS = {
    "not JSON": ("{cluster", "is not JSON"),
    "no cluster": ('{"task": {"type": "worker", "index": 0}}', "has no 'cluster' mapping"),
    "a parameter server": ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "names a 'ps' job"),
    "an address without a port": ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker"}}', "host:port"),
    "an index past the end": ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "0..0"),
    "one address twice": ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker"}}', "two tasks"),
}


@pytest.mark.parametrize("case", list(BAD_CLUSTERS))
def test_a_malformed_tf_config_is_one_line(case, tmp_path, monkeypatch):
    text, fragment = BAD_CLUSTERS[case]
    monkeypatch.setenv("TF_CONFIG", text)
    result = dlapps("vision", "train", "--runs-dir", tmp_path / "runs", *sets(*TINY, *MULTI))
    assert_one_line_error(result, "TF_CONFIG", fragment)
    assert not (tmp_path / "runs").exists()


def test_what_multi_worker_needs_is_said_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    runs = ["--runs-dir", tmp_path / "runs"]
    assert_one_line_error(dlapps("vision", "train", *runs, *sets(*MULTI)), "needs TF_CONFIG", "train.workers=N")
    assert_one_line_error(
        dlapps("vision", "train", *runs, *sets(*MULTI, "train.workers=4", "train.batch_size=2")),
        "train.batch_size 2 is the global batch and must be at least the 4 workers",
    )
    monkeypatch.setenv("TF_CONFIG", cluster.local_cluster([1, 2], 0))
    assert_one_line_error(dlapps("vision", "train", *runs, *sets(*MULTI, "train.workers=3")), "TF_CONFIG names 2 tasks")
    assert not (tmp_path / "runs").exists()
    result = dlapps("vision", "train", *runs, "--check", *sets(*MULTI, "train.workers=3"))
    assert result.exit_code == 0 and "settings, data and model OK" in result.output  # checked in one process


def test_the_chief_is_worker_0_unless_the_cluster_names_one():
    workers = {"worker": ["a:1", "b:2"]}
    assert cluster.parse(json.dumps({"cluster": workers, "task": {"type": "worker", "index": 0}})).is_chief
    assert not cluster.parse(json.dumps({"cluster": workers, "task": {"type": "worker", "index": 1}})).is_chief
    with_chief = {"chief": ["c:3"], **workers}
    parsed = cluster.parse(json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}}))
    assert parsed.is_chief and parsed.size == 3 and [name for name, _ in parsed.peers()] == ["worker 0", "worker 1"]
    assert not cluster.parse(json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})).is_chief


KERAS_ALONE = """
import os, sys
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
import keras, numpy as np
if sys.argv[1] == "repaired":
    from pipelines.core.cluster import repair_keras
    repair_keras()
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
x = np.ones((32, 4), "float32")
model.fit(tf.data.Dataset.from_tensor_slices((x, x[:, :2])).batch(8), epochs=1, verbose=0)
print("trained")
"""


NOISE = """
import json
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
import keras
from pipelines.generative.models import replica_normal
keras.utils.set_random_seed(0)
draw = tf.function(lambda: strategy.run(replica_normal, args=([4, 3],)))
print(json.dumps(strategy.experimental_local_results(draw())[0].numpy().tolist()))
"""


def test_the_generative_models_workers_draw_noise_of_their_own(tmp):
    """Each worker traces the same graph with the same seeds: a plain draw would give every worker's share of the
    batch the same noise (the GAN's latent vectors, the VAE's reparameterisation)."""
    outputs = two_workers(tmp, NOISE)
    assert [code for code, _, _ in outputs] == [0, 0], outputs
    first, second = (json.loads(out.strip().splitlines()[-1]) for _, out, _ in outputs)
    assert len(first) == 4 and first != second


ONE_STEP = """
import sys
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
import keras
from pipelines.core.steps import descend
with strategy.scope():
    weight = keras.Variable(1.0)
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build([weight])
share = tf.constant([[1.0, 2.0], [3.0, 4.0]][int(sys.argv[1])])  # this worker's half of the global batch 1, 2, 3, 4
loss = lambda: (tf.reduce_mean((weight * share) ** 2),)
tf.function(lambda: strategy.run(lambda: descend(optimizer, [weight], loss)))()
print(float(weight.numpy()))
"""


def test_a_step_of_an_own_train_step_on_two_workers_is_the_step_of_one_process_on_their_batch(tmp):
    """descend() on two workers, each with half the batch, moves the weight as one process does on the whole batch:
    d/dw mean((w x)^2) = 2 w mean(x^2) = 15 at w = 1, so SGD at 0.1 gives -0.5 (-2.0 were the halves' gradients
    summed without the division by the replicas)."""
    outputs = two_workers(tmp, ONE_STEP, "{worker}")
    assert [code for code, _, _ in outputs] == [0, 0], outputs
    assert [float(out.strip().splitlines()[-1]) for _, out, _ in outputs] == pytest.approx([-0.5, -0.5])


@pytest.mark.parametrize("repaired", [False, True])
def test_keras_needs_the_repair_to_fit_on_two_workers(repaired, tmp):
    """Without pipelines.core.cluster.repair_keras, Keras' fit fails on two workers (keras-team/keras#20585).
    When this test fails for repaired=False, Keras trains there by itself: remove the repair."""
    outputs = two_workers(tmp, KERAS_ALONE, "repaired" if repaired else "plain")
    if repaired:
        assert all("trained" in out for _, out, _ in outputs), outputs
    else:
        assert all("Attempt to convert a value (PerReplica" in err for _, _, err in outputs), outputs


SHARES = """
import json
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
from pipelines.core.config import TrainConfig
from pipelines.core.pipeline import Data
from pipelines.core.stages import batched
from pipelines.core.training import training_stream
train = batched(tf.data.Dataset.range(12), batch_size=4, training=True, seed=0)
data = Data(train, train, train, (), {"train": 12, "validation": 12, "test": 12}, "range", "")
def batches(done_epochs, steps):
    stream, per_epoch = training_stream(data, TrainConfig(batch_size=4), done_epochs, strategy)
    found = iter(stream)
    return per_epoch, [strategy.experimental_local_results(next(found))[0].numpy().tolist() for _ in range(steps)]
per_epoch, two_epochs = batches(0, 6)
print(json.dumps({"steps": per_epoch, "two_epochs": two_epochs, "resumed": batches(1, 3)[1]}))
"""


def test_each_worker_reads_its_own_share_of_the_training_split_and_resumes_where_it_was(tmp):
    """Two workers, a split of 12 examples, a global batch of 4: each worker takes 2 of each batch from its own 6
    examples (those of its places in each batch of 4), every example once an epoch, in 3 steps (as one process
    takes); a stream resumed after epoch 1 continues with the batches the uninterrupted stream gave in epoch 2."""
    outputs = two_workers(tmp, SHARES)
    assert [code for code, _, _ in outputs] == [0, 0], outputs
    found = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in outputs]
    for worker, share in zip(found, ([0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11])):
        assert worker["steps"] == 3 and all(len(batch) == 2 for batch in worker["two_epochs"])
        first, second = worker["two_epochs"][:3], worker["two_epochs"][3:]
        assert sorted(sum(first, [])) == share and sorted(sum(second, [])) == share and first != second
        assert worker["resumed"] == second
