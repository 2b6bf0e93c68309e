"""Training across processes and machines: ``train.strategy=multi_worker``, TensorFlow's
MultiWorkerMirroredStrategy as TF_CONFIG describes the cluster.

Every worker runs the same command, whole: the same data (of the training split, each reads its own share:
:func:`pipelines.core.training.worker_streams`), the same callbacks, the same evaluation, so each
collective operation (an all-reduce of gradients, of validation metrics) is met by every worker in the same
order, and no worker waits for one that skipped it. Only where they write differs: the chief writes the run
directory, the other workers a private copy that is removed when they end (:func:`private_runs_dir`).

Keras 3 needs two repairs to ``fit`` under this strategy (:func:`repair_keras`) and does not average the
statistics that each worker updates by itself (:class:`SyncWorkerState`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from pipelines.core.errors import UserError

TF_CONFIG = "TF_CONFIG"
HEARTBEAT_SECONDS = 10  # a worker silent this long is lost: its peers stop instead of waiting for ever


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster TF_CONFIG describes."""

    jobs: dict  # job name -> list of "host:port"
    task_type: str
    task_index: int

    @property
    def size(self) -> int:
        return sum(len(addresses) for addresses in self.jobs.values())

    @property
    def is_chief(self) -> bool:
        """TensorFlow's rule: the "chief" task, or worker 0 where the cluster names no chief."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.task_index}"

    @property
    def address(self) -> str:
        return self.jobs[self.task_type][self.task_index]

    def peers(self) -> list[tuple[str, str]]:
        """(task name, address) of every other task."""
        return [
            (f"{job} {index}", address)
            for job, addresses in self.jobs.items()
            for index, address in enumerate(addresses)
            if (job, index) != (self.task_type, self.task_index)
        ]


def from_environment() -> Cluster | None:
    """The cluster of TF_CONFIG, or None when it is not set; a malformed TF_CONFIG is a :class:`UserError`."""
    text = os.environ.get(TF_CONFIG)
    return None if text is None else parse(text)


def parse(text: str) -> Cluster:
    def bad(why: str) -> UserError:
        return UserError(
            f"TF_CONFIG {why}; it must look like "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
        )

    try:
        spec = json.loads(text)
    except ValueError as err:
        raise bad(f"is not JSON ({err})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict):
        raise bad("has no 'cluster' mapping")
    jobs = spec["cluster"]
    for job, addresses in jobs.items():
        if job not in ("chief", "worker"):
            raise bad(f"names a '{job}' job; multi_worker trains with 'chief' and 'worker' tasks only")
        if not isinstance(addresses, list) or not addresses or not all(_is_address(a) for a in addresses):
            raise bad(f"job '{job}' must be a list of host:port addresses, got {json.dumps(addresses)}")
    if "worker" not in jobs and "chief" not in jobs:
        raise bad("names no workers")
    if len(jobs.get("chief", [])) > 1:
        raise bad("names more than one chief")
    task = spec.get("task")
    if not isinstance(task, dict) or task.get("type") not in jobs:
        raise bad(f"task must name this process's job ({' or '.join(jobs)}) as 'type'")
    index = task.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs[task["type"]]):
        raise bad(f"task index must be 0..{len(jobs[task['type']]) - 1} for job '{task['type']}', got {index!r}")
    addresses = [a for job in jobs.values() for a in job]
    if len(set(addresses)) != len(addresses):
        raise bad("gives one address to two tasks")
    return Cluster(jobs=jobs, task_type=task["type"], task_index=index)


def _is_address(text) -> bool:
    host, sep, port = text.rpartition(":") if isinstance(text, str) else ("", "", "")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def local_cluster(ports: list[int], index: int) -> str:
    """TF_CONFIG for worker ``index`` of workers on 127.0.0.1 at ``ports`` (worker 0 is the chief)."""
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def join(cluster: Cluster, wait_seconds: float):
    """This process's MultiWorkerMirroredStrategy, once every task has joined.

    It must be made before TensorFlow runs its first operation ("collective ops must be configured at program
    startup"), so the CLI makes it right after reading the settings. TensorFlow waits for missing tasks without
    end, and without letting Python run; so first every task is waited for here, at most ``wait_seconds``,
    and those that never answer are named in a :class:`UserError`.
    """
    import tensorflow as tf
    from tensorflow.python.eager import context

    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2  # isort: skip

    wait_for_peers(cluster, wait_seconds)
    # The coordination service that MultiWorkerMirroredStrategy would start by itself, with a heartbeat: a
    # worker that dies is then noticed by the others, which stop with an error instead of waiting.
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{'chief' if 'chief' in cluster.jobs else 'worker'}/replica:0/task:0",
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(addresses))
            for job, addresses in cluster.jobs.items()
        ],
        heartbeat_timeout_in_ms=HEARTBEAT_SECONDS * 1000,
        shutdown_barrier_timeout_in_ms=HEARTBEAT_SECONDS * 1000,
    )
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (ValueError, tf.errors.OpError) as err:  # a port this host does not own, a port in use
        raise UserError(f"{cluster.name} cannot serve at {cluster.address}: {str(err).splitlines()[0]}") from None
    repair_keras()
    global _joined
    _joined = strategy
    return strategy


_joined = None  # the strategy of :func:`join`: one per process


def is_joined() -> bool:
    """Whether this process is a worker of a multi-worker cluster (:func:`join` made its strategy)."""
    return _joined is not None


def joined_strategy():
    """The strategy :func:`join` made at start-up (``train.strategy=multi_worker``)."""
    if _joined is None:
        raise UserError(
            "train.strategy=multi_worker needs TF_CONFIG (one per worker, as TensorFlow documents) or "
            "train.workers=N (N workers on this machine)"
        )
    return _joined


def wait_for_peers(cluster: Cluster, wait_seconds: float) -> None:
    """Answer at this task's address (a plain socket, until TensorFlow's server takes the port) and wait until
    every other task answers at its own."""
    port = int(cluster.address.rpartition(":")[2])
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("", port))  # every interface, as TensorFlow's server binds
        except OSError as err:
            raise UserError(
                f"{cluster.name} cannot listen at {cluster.address} ({err.strerror}); check TF_CONFIG"
            ) from None
        listener.listen(64)
        deadline = time.monotonic() + wait_seconds
        waiting = cluster.peers()
        while waiting:
            waiting = [(name, address) for name, address in waiting if not _answers(address)]
            if waiting and time.monotonic() > deadline:
                missing = ", ".join(f"{name} at {address}" for name, address in waiting)
                raise UserError(
                    f"{cluster.name} waited {wait_seconds:g} s for the other workers of TF_CONFIG and gave up "
                    f"({missing} never answered); start every worker with the same TF_CONFIG, or raise "
                    "train.join_seconds"
                )
            if waiting:
                time.sleep(0.2)


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with contextlib.suppress(OSError), socket.create_connection((host.strip("[]"), int(port)), timeout=2):
        return True
    return False


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (all held open together, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


PRIVATE_PREFIX = "dlapps-worker-pid"


def private_runs_dir() -> Path:
    """Where a worker other than the chief writes its copy of the run: a temporary folder, never a place a user
    looks; the caller removes it when the worker ends, and the next worker the copies of killed ones."""
    temporary = Path(tempfile.gettempdir())
    for left in temporary.glob(f"{PRIVATE_PREFIX}*"):
        with contextlib.suppress(ValueError):
            if not _alive(int(left.name.removeprefix(PRIVATE_PREFIX))):
                shutil.rmtree(left, ignore_errors=True)
    path = temporary / f"{PRIVATE_PREFIX}{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)  # an earlier process of this pid that was killed
    path.mkdir()
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def copy_for_resume(run_root: Path, into: Path) -> Path:
    """A non-chief worker's private copy of the chief's run, as ``--resume`` needs it: settings, status and
    the resume state, so it restores the same epoch the chief does (TensorFlow asks the same of
    BackupAndRestore: a run directory every worker can read)."""
    copy = into / run_root.name
    copy.mkdir(parents=True)
    for name in ("run.json", "config.yaml"):
        shutil.copy2(run_root / name, copy / name)
    for sub in ("logs", "samples"):
        (copy / sub).mkdir()
    backup = run_root / "checkpoints" / "backup"
    if backup.is_dir():
        shutil.copytree(backup, copy / "checkpoints" / "backup", ignore=shutil.ignore_patterns("*.partial*"))
    else:
        (copy / "checkpoints").mkdir()
    return copy


# --- Keras 3 under MultiWorkerMirroredStrategy -------------------------------------------------------------
# keras-team/keras#20585, tensorflow/tensorflow#72388: fit fails with "Attempt to convert a value (PerReplica
# ...) to a Tensor" on 2 or more workers. tests/core/test_cluster.py trains plain Keras on two workers without
# the repair and fails once Keras trains there by itself: then this section goes.
REPAIRED_KERAS = ("3.",)  # the Keras versions whose TensorFlow trainer this repair was written against


def repair_keras() -> None:
    import keras
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_dlapps_repaired", False) or not keras.__version__.startswith(REPAIRED_KERAS):
        return
    trainer.reduce_per_replica = _reduce_per_replica(trainer.reduce_per_replica)
    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    trainer._dlapps_repaired = True


def _reduce_per_replica(original):
    """Keras reduces a step's logs with ``strategy.reduce("MEAN", v, axis=0)``, which a multi-worker strategy
    refuses for the scalars the logs are; the mean over replicas (axis=None) is what is meant."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original(values, strategy, reduction)

    return reduce_per_replica


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras builds the model from the first batch, "reduced" over replicas with ``strategy.reduce``; across
    workers that reduction fails (and averaging inputs means nothing). Building needs only the batch's shapes
    and dtypes, which the dataset states: so no batch is drawn, and no iterator made and dropped (whose
    read-ahead would move the seeded shuffle sequence on by an amount that depends on timing)."""
    if self._distribute_strategy is None:
        return
    if data_batch is None and iterator is not None:
        data_batch = _one_replica(iterator.data_adapter.get_tf_dataset().element_spec)
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _one_replica(spec):
    """A distributed dataset's element spec as one replica's (each worker's own dataset states PerReplicaSpecs)."""
    import tensorflow as tf
    from tensorflow.python.distribute import values

    def one(found):
        return found._value_specs[0] if isinstance(found, values.PerReplicaSpec) else found

    return tf.nest.map_structure(one, spec, expand_composites=False)


def is_multi_worker(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def input_workers(strategy) -> int:
    """The tasks that read input: the chief (where the cluster names one) and the workers."""
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(jobs.get(job, ())) for job in ("chief", "worker"))


def sync_callback(strategy):
    """A callback that averages, over all workers, the variables each updates by itself: batch normalisation's
    moving statistics follow each worker's own batches (Keras 3 gives them no aggregation). Before each
    validation and at each epoch's end, so every worker validates and saves the same model."""
    import keras
    import tensorflow as tf

    class SyncWorkerState(keras.callbacks.Callback):
        def sync(self, *_args, **_kwargs):
            shared = [v for v in self.model.non_trainable_variables if v.dtype.startswith("float")]
            if not shared:
                return
            local = strategy.run(lambda: [tf.identity(v.value) for v in shared])
            for variable, value in zip(shared, local, strict=True):
                variable.assign(strategy.reduce("MEAN", value, axis=None))

        on_test_begin = on_epoch_end = on_train_end = sync

    return SyncWorkerState()


def weights_digest(model) -> str:
    """A short digest of every weight, to see in the workers' logs that they end with the same model."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:16]
