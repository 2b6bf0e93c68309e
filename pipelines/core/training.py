"""The training driver: seed, strategy, compile, fit with the shared callbacks, evaluate, save.

Every domain trains through :func:`train`; anything unusual (GAN, seq2seq) is a
``keras.Model`` with its own ``train_step``, not another driver.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import sys
import time
from typing import Any

import keras
import tensorflow as tf

from pipelines.core import callbacks as shared_callbacks
from pipelines.core import cluster, tracking
from pipelines.core.config import TrainConfig, dump_yaml, flatten, from_dict, to_dict
from pipelines.core.errors import UserError
from pipelines.core.fingerprint import digest
from pipelines.core.pipeline import Data, Pipeline
from pipelines.core.rundir import RunDir

log = logging.getLogger(__name__)


def seed_everything(train_config: TrainConfig) -> None:
    """Python, NumPy and TensorFlow seeds; op determinism when asked (same seed -> same weights)."""
    keras.utils.set_random_seed(train_config.seed)
    if train_config.deterministic:
        tf.config.experimental.enable_op_determinism()


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return cluster.joined_strategy()
    raise UserError(f"unknown train.strategy '{name}'; choose default, mirrored or multi_worker")


def check_replicas(strategy: tf.distribute.Strategy, train_config: TrainConfig) -> None:
    """``train.batch_size`` is the global batch: each replica must get at least one example of it."""
    replicas = strategy.num_replicas_in_sync
    if replicas > 1:
        train_config.check_batch_shared_among(replicas, "replicas")
        log.info(
            "%d replicas: global batch %d, %g per replica; learning rate %g (not scaled)",
            replicas,
            train_config.batch_size,
            train_config.batch_size / replicas,
            train_config.learning_rate,
        )


def make_optimizer(train_config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    total = max(1, steps_per_epoch * train_config.epochs)
    warmup = min(total - 1, int(train_config.warmup_epochs * steps_per_epoch))
    peak = train_config.learning_rate
    if train_config.schedule == "constant":
        rate = peak
    elif train_config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else peak,
            decay_steps=total - warmup,
            warmup_target=peak if warmup else None,
            warmup_steps=warmup,
        )
    else:
        raise UserError(f"unknown train.schedule '{train_config.schedule}'; choose constant or cosine")
    optimizers = {
        "adam": lambda: keras.optimizers.Adam(rate, beta_1=train_config.beta_1),
        "adamw": lambda: keras.optimizers.AdamW(
            rate, weight_decay=train_config.weight_decay, beta_1=train_config.beta_1
        ),
        "sgd": lambda: keras.optimizers.SGD(rate, momentum=0.9, nesterov=True),
    }
    if train_config.optimizer not in optimizers:
        raise UserError(f"unknown train.optimizer '{train_config.optimizer}'; choose one of: {', '.join(optimizers)}")
    return optimizers[train_config.optimizer]()


@contextlib.contextmanager
def precision_policy(mixed: bool):
    """Mixed float16 while the model is built and compiled (layers and the loss-scaling optimizer keep it)."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def steps_per_epoch(data: Data, train_config: TrainConfig) -> int:
    return train_config.steps_per_epoch or math.ceil(data.sizes["train"] / train_config.batch_size)


def load_data(pipeline: Pipeline, config: Any) -> Data:
    """The settings checked, then the data read (train, evaluate and --resume all start here)."""
    check_registered(pipeline, config)
    pipeline.check_settings(config)
    tracking.check(config.track)
    return pipeline.load_data(config)


def check_registered(pipeline: Pipeline, config: Any) -> None:
    """``data.source`` and ``model.name`` name something the domain registered (ranges and choices of every other
    setting are checked when the config is read: pipelines/core/config.py)."""
    if config.data.source != "auto":
        pipeline.sources.get(config.data.source)
    pipeline.models.get(config.model.name)


def prepare(pipeline: Pipeline, config: Any) -> tuple[Data, keras.Model]:
    """Seed, load the data and build the compiled model: every user error surfaces here."""
    seed_everything(config.train)
    pipeline.monitor_mode(config)  # a monitor that nothing logs: refused before minutes of data loading
    data = load_data(pipeline, config)
    log.info("data: %s", data.describe())
    strategy = make_strategy(config.train.strategy)
    check_replicas(strategy, config.train)
    with precision_policy(config.train.mixed_precision), strategy.scope():
        model = pipeline.build_model(config, data)
        optimizer = make_optimizer(config.train, steps_per_epoch(data, config.train))
        model.compile(optimizer=optimizer, **pipeline.compile_args(config, data))
    log.info("model: %s, %s parameters", config.model.name, f"{model.count_params():,}")
    return data, model


def create_run(pipeline: Pipeline, config: Any, runs_dir: str, name: str | None) -> RunDir:
    """A new run directory with its config; called after :func:`prepare`, so bad input leaves none behind."""
    from_dict(type(config), to_dict(config))  # settings resolved from the data obey the ranges too: readable back
    run = RunDir.create(runs_dir, pipeline.domain, name)
    try:
        dump_yaml(config, run.config)
        run.write_info(config_digest=digest(run.config.read_bytes()))
        shared_callbacks.write_hparams(run.logs, flatten(to_dict(config)), trial_id=run.root.name)
    except BaseException:  # a full disk, a kill: a run without its config could never resume, so none is left
        shutil.rmtree(run.root, ignore_errors=True)
        raise
    return run


def train(pipeline: Pipeline, config: Any, data: Data, model: keras.Model, run: RunDir, callbacks: tuple = ()) -> dict:
    """Fit ``model`` in ``run`` (continuing from its last finished epoch, if any), save, evaluate.

    ``callbacks`` are added to the shared ones (benchmarks use it to time the way to an accuracy).
    """
    started = time.time()
    tracker = tracking.Tracker(run, config.track, pipeline.domain)
    tracker.start(config, pipeline.task, data.source, data.fingerprint)
    try:
        metrics = _fit_and_evaluate(pipeline, config, data, model, run, [tracker.callback(), *callbacks], started)
    except KeyboardInterrupt:
        tracker.finish("interrupted")
        raise
    except shared_callbacks.TrainingDiverged as diverged:
        run.write_info(status="diverged", diverged_at=diverged.where)
        tracker.finish("diverged")
        raise UserError(f"{diverged}; {divergence_advice(pipeline, config, run, diverged.validation)}") from None
    except BaseException:
        tracker.finish("failed")
        raise
    tracker.log_evaluation(metrics, step=config.train.epochs)
    tracker.finish("complete")
    return metrics


def _fit_and_evaluate(pipeline, config, data, model, run, callbacks, started) -> dict:
    if run.info().get("status") == "trained":
        # Killed after fit had finished (while saving or evaluating): only the evaluation is left.
        model = keras.models.load_model(run.model, compile=False)
        check_model_fits(run, model, run.model)
    else:
        run.write_info(status="training", input_shape=list(data.input_shape), data=data.describe(), **data.identity())
        batches, steps = training_stream(
            data, config.train, shared_callbacks.ResumeState(run.backup).latest_epoch(), model.distribute_strategy
        )
        model.fit(
            batches,
            validation_data=data.validation,
            **data.fit_args(),
            epochs=config.train.epochs,
            steps_per_epoch=steps,
            # The domain's callbacks first: a value they add to the epoch's logs (a generative model's sample
            # quality) reaches TensorBoard, early stopping and best.keras in the same epoch.
            callbacks=[
                *worker_callbacks(model),  # first: the others see the model every worker has
                shared_callbacks.StopOnDivergence(),
                *pipeline.extra_callbacks(config, data, run),
                *shared_callbacks.standard_callbacks(run, config.train, pipeline.monitor_mode(config)),
                *callbacks,
            ],
            verbose=1 if sys.stdout.isatty() else 2,
        )
        shared_callbacks.save_atomically(model, run.model)
        if cluster.is_multi_worker(model.distribute_strategy):
            log.info("weights at the end of training: %s", cluster.weights_digest(model))
        run.write_info(
            status="trained", train_seconds=round(time.time() - started, 1), model_shapes=model_shapes(model)
        )
    metrics = pipeline.evaluate(model, data, config, run, step=config.train.epochs)
    run.write_info(status="complete")
    return metrics


def training_stream(data: Data, train_config: TrainConfig, done_epochs: int, strategy=None):
    """(batches, steps per epoch) of training from epoch ``done_epochs`` on, as a run never stopped sees them.

    One stream across epochs, each pass over the split reshuffled (a pass of ``repeat`` draws the next shuffle
    order and random seeds of the seeded sequence, as a new iterator would): a resumed run skips the batches of
    the epochs done, so it gets the data order of the epochs it continues, not epoch 1's again. A split of
    unknown length is iterated anew each epoch, and a resumed run's order starts over. On several workers each
    reads its own share of the split (:func:`worker_streams`), and every epoch has one process's steps.
    """
    if worker_shares(data, train_config, strategy):
        return worker_streams(data, train_config, done_epochs, strategy)
    steps = train_config.steps_per_epoch or known_length(data.train)
    if steps is None:
        return data.train, None
    return data.train.repeat().skip(done_epochs * steps), steps


def worker_shares(data: Data, train_config: TrainConfig, strategy) -> bool:
    """Whether each worker reads a share of the training split of its own: on several workers with one replica
    each, where the split comes from :func:`stages.batched`, fills at least one batch (a smaller one would leave
    a worker no examples, and the others waiting for it) and Keras weighs no classes (it would weigh them in a
    dataset that a worker's share, already distributed, no longer is). Otherwise every worker runs the whole
    input pipeline and keeps its part of each batch (tf.data's sharding by data)."""
    return (
        cluster.is_multi_worker(strategy)
        and strategy.num_replicas_in_sync == cluster.input_workers(strategy)
        and hasattr(data.train, "worker_share")
        and data.sizes["train"] >= train_config.batch_size
        and data.fit_args().get("class_weight") is None
    )


def worker_streams(data: Data, train_config: TrainConfig, done_epochs: int, strategy):
    """Each worker's own stream: the examples of its places in each global batch (:func:`stages.share_of_examples`),
    in batches of its share of the global batch. Every worker takes the steps one process takes on the whole
    split, so all meet at each all-reduce; a worker whose places the split's last, partial batch leaves empty
    starts its next pass a step early. A resumed worker skips the batches it had taken."""
    steps = steps_per_epoch(data, train_config)

    def stream(context: tf.distribute.InputContext) -> tf.data.Dataset:
        share = data.train.worker_share(context.input_pipeline_id, context.num_input_pipelines)
        return share.repeat().skip(done_epochs * steps)

    log.info("each worker reads its share of the %s training examples", f"{data.sizes['train']:,}")
    return strategy.distribute_datasets_from_function(stream), steps


def known_length(dataset: tf.data.Dataset) -> int | None:
    length = int(dataset.cardinality())
    return length if length > 0 else None


def worker_callbacks(model: keras.Model) -> list:
    strategy = model.distribute_strategy
    return [cluster.sync_callback(strategy)] if cluster.is_multi_worker(strategy) else []


def model_shapes(model: keras.Model) -> dict:
    """What tells the run's model from another: the shapes it takes and gives (no batch axis), or, for a model
    that declares no inputs (the GAN, the translator: their own ``call``), the shapes of its weights."""
    if getattr(model, "inputs", None) and getattr(model, "outputs", None):
        return {
            "inputs": [list(tensor.shape[1:]) for tensor in model.inputs],
            "outputs": [list(tensor.shape[1:]) for tensor in model.outputs],
        }
    return {"weights": [list(weight.shape) for weight in model.weights]}


def check_model_fits(run: RunDir, model: keras.Model, path) -> None:
    """evaluate, predict, export and sample refuse a model file that is not the run's (another run's model
    copied in by hand): its shapes must be those run.json recorded when training ended (older runs: unchecked)."""
    recorded = run.info().get("model_shapes")
    found = model_shapes(model)
    if recorded is None or found == recorded:
        return
    part = next((key for key in found if found[key] != recorded.get(key)), next(iter(found)))
    raise UserError(
        f"{path} is not the model this run trained: its {part} have shapes {found[part]}, the run's had "
        f"{recorded.get(part)}; put the run's own model back, or train a new run"
    )


def divergence_advice(pipeline: Pipeline, config: Any, run: RunDir, validation: bool) -> str:
    """What the one line of a diverged run says: what is kept, and a new run with a lower rate (or, where only
    the validation loss is not finite, a look at the validation data)."""
    done = run.info().get("epochs_done", 0)
    kept = (
        f"the checkpoints of epoch {done}, the last good one, are kept in {run.checkpoints}"
        if done
        else "no epoch had finished, so there is no checkpoint"
    )
    rate = config.train.learning_rate
    if validation:
        return f"{kept}. The training loss was finite: look for values in the validation data the model cannot take"
    return (
        f"{kept}. A run keeps its config, so start a new one, usually with a lower learning rate: "
        f"dlapps {pipeline.domain} train --config {run.config} --set train.learning_rate={rate / 10:g}"
    )


def check_same_config(run: RunDir) -> None:
    """``--resume`` continues a run with the config it started with: an edited config.yaml is refused."""
    recorded = run.info().get("config_digest")
    if recorded is not None and recorded != digest(run.config.read_bytes()):
        raise UserError(
            f"{run.config} was changed after the run started; a run keeps its config: "
            f"start a new run with --config {run.config}"
        )


def check_same_data(run: RunDir, data: Data) -> None:
    """``evaluate`` and ``--resume`` must read the data the run was trained on: every value of
    :meth:`Data.identity` (the examples of each split, the classes) as run.json recorded it (a re-split
    file would put training examples into the test split, or resume weights onto other classes). A value
    that an older run did not record is not checked."""
    info = run.info()
    for key, now in data.identity().items():
        then = info.get(key)
        if then is not None and then != now:
            if key == "data_fingerprint":
                shown = "its splits hold other examples"
            else:
                shown = f"{key.replace('_', ' ')} {now} instead of {then}"
            raise UserError(
                f"the data has changed since {run.root} was trained ({shown}); "
                "use the data it was trained on, or train a new run"
            )
