"""`dlapps`: one click subgroup per registered domain, all built from the same verbs.

TensorFlow is imported inside command bodies only, so ``dlapps --help`` stays fast.
A :class:`UserError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import importlib.util
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import click

from apps.tuning import ALGORITHMS
from pipelines.core.errors import UserError
from pipelines.core.names import shown
from pipelines.domains import DOMAINS

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so training stops as it does for Ctrl-C: state kept, resumable."""


def sigterm_interrupts(command):
    """While ``command`` runs, SIGTERM (a scheduler's stop: kill, systemd, Slurm) ends it as Ctrl-C does."""

    def terminated(signum, frame):
        raise Terminated("terminated (SIGTERM)")

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        previous = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, terminated)
        try:
            return command(*args, **kwargs)
        finally:  # as they were (the tests call commands in their own process)
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])

    return wrapper


def ignore_further_stops() -> None:
    """From here to the exit, Ctrl-C and SIGTERM are ignored: the process is already saying how it stopped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def reports_user_errors(command):
    """Turn a UserError (or a refusal by the system: a full disk, a path) into one line on stderr and exit code
    2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt as stop:
            click.echo(f"\n{str(stop) or 'interrupted'}", err=True)
            sys.exit(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED)
        except Exception as err:
            line = system_refusal(err)
            if line is None:
                raise  # not about a file (a network error, a bug): its traceback says more than one line would
            click.echo(f"error: {line}", err=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper


def system_refusal(err: Exception) -> str | None:
    """An error the system raised about a path (a full disk, a name too long, no permission) as one line: what,
    where, and what to do; None for any other error."""
    where = full_disk(err)
    if where is not None:
        return no_space(where, "repeat the command")
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.strerror or err} ({shown(err.filename)}); check the path and its permissions"
    return None


def no_space(where, then: str) -> str:
    return f"no space left on the device{f' ({shown(where)})' if where else ''}; free some space, then {then}"


@contextlib.contextmanager
def writing_into(folder: Path, then: str = "repeat the command"):
    """A full disk while a command writes into ``folder`` becomes one line, naming the file (or the folder, where
    the error names no file or one a clean-up has removed: a staging folder's) and what to do next."""
    try:
        yield
    except Exception as err:
        where = full_disk(err)
        if where is None:
            raise
        raise UserError(no_space(where if where and os.path.lexists(where) else folder, then)) from None


NO_SPACE = re.compile(r"(?:(\S*/\S*?);? )?No space left on device")  # TensorFlow's "<file>; No space left ..."


def full_disk(err: BaseException | None) -> str | None:
    """Where a write found the disk full: the path (or "" when nothing names one), None when ``err`` is another
    error. Python says so with errno ENOSPC; TensorFlow's writers (event files, SavedModels) raise errors of their
    own whose message carries the system's words and the file."""
    while err is not None:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return err.filename or ""
        match = NO_SPACE.search(str(err))
        if match:
            return match.group(1) or ""
        err = err.__cause__ or err.__context__
    return None


def load_pipeline(domain: str, verbose: bool, task: str | None = None, first_operation: bool = True):
    """The pipeline of the domain's ``task`` (None: its default task); ``first_operation=False``: see
    :func:`apps.quiet.start_tensorflow`."""
    from apps.quiet import start_tensorflow

    entry = DOMAINS[domain]
    if task is not None and task not in entry.tasks:
        raise UserError(f"{domain} has no task '{task}'; tasks: {', '.join(entry.tasks)}")
    module = entry.tasks[task or entry.default_task]
    start_tensorflow(verbose, module, first_operation=first_operation)
    return importlib.import_module(module).PIPELINE


def task_in_config(path: Path | None) -> str | None:
    """The ``task`` a config file (a run's config.yaml) names, if any; a missing file is reported later."""
    from pipelines.core.config import read_config_file

    if path is None or not path.exists():
        return None
    loaded = read_config_file(path)
    task = loaded.get("task") if isinstance(loaded, dict) else None
    return task if isinstance(task, str) else None


def open_trained_run(domain: str, run_dir: Path, verbose: bool):
    """The pipeline, run directory, its config and trained model that evaluate/predict/export start from."""
    pipeline = load_pipeline(domain, verbose, task_in_config(run_dir / "config.yaml"))
    from pipelines.core import config as cfg
    from pipelines.core.rundir import RunDir

    run = RunDir.open(run_dir, domain)
    config = cfg.load_yaml(run.config, pipeline.config_class)
    return pipeline, run, config, load_model(run)


def load_model(run):
    import keras

    from pipelines.core.training import check_model_fits

    path = run.require_model()
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # a truncated or foreign file: Keras raises many types
        raise UserError(f"cannot load the model {path}: {str(err).splitlines()[0]}") from None
    check_model_fits(run, model, path)
    return model


verbose_option = click.option("--verbose", is_flag=True, help="Show TensorFlow's own logging and warnings.")
run_argument = click.argument("run_dir", type=click.Path(path_type=Path))
data_option = click.option("--data", help="Data to train on: a path (or tfds:NAME). Default: the embedded data.")
config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), help="YAML config, e.g. a run's config.yaml."
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change one setting, e.g. train.epochs=5 (repeatable).",
)
runs_dir_option = click.option(
    "--runs-dir", default="runs", show_default=True, type=click.Path(path_type=Path), help="Root of run directories."
)


def with_task_option(command: click.Command, domain: str) -> click.Command:
    """``--task`` where the domain has more than one."""
    tasks = DOMAINS[domain].tasks
    if len(tasks) > 1:
        return click.option("--task", help=f"What to train: {' | '.join(tasks)} (default {next(iter(tasks))}).")(
            command
        )
    return command


def train_command(domain: str) -> click.Command:
    @click.command("train")
    @data_option
    @config_option
    @set_option
    @click.option("--name", help="Run directory name: letters, digits and . , _ + = @ - (default: a timestamp).")
    @runs_dir_option
    @click.option(
        "--resume",
        "resume_dir",
        type=click.Path(path_type=Path),
        help="Continue an interrupted run from its last epoch.",
    )
    @click.option(
        "--check",
        is_flag=True,
        help="Check the settings, read the data, build the model, then stop: no training, nothing written.",
    )
    @verbose_option
    @reports_user_errors
    @sigterm_interrupts
    def train(data, config_path, overrides, name, runs_dir, resume_dir, check, verbose, task=None):
        """Train a model; logs, checkpoints, metrics and the model go to a new run directory."""
        config_file = resume_dir / "config.yaml" if resume_dir else config_path
        if task and resume_dir:
            raise UserError("--resume continues a run with its own task; drop --task")
        if task and task_in_config(config_path) not in (None, task):
            raise UserError(
                f"--task {task}, but {config_path} is a {task_in_config(config_path)} config; drop one of them"
            )
        # before any module that imports TensorFlow; its first operation waits for the settings (a cluster)
        pipeline = load_pipeline(domain, verbose, task or task_in_config(config_file), first_operation=False)
        started = time.time()
        if resume_dir:
            if data or config_path or overrides or name:
                raise UserError("--resume continues a run with its own config; drop --data/--config/--set/--name")
            run, config = resumable_run(pipeline, domain, resume_dir)
        else:
            run, config = None, requested_config(pipeline, config_path, data, overrides)
        if check:
            start_single_process(verbose)
            return check_only(pipeline, single_process(config), run)  # reads only: no lock taken
        worker = start_process(config.train, verbose)
        if worker is None and config.train.strategy == "multi_worker":  # train.workers processes, here
            from apps.launcher import TrainRequest, launch_local_workers
            from pipelines.core.rundir import RunDir

            request = TrainRequest(
                domain,
                runs_dir,
                name=run.root.name if run else RunDir.free_path(runs_dir, domain, name).name,
                resume=run.root if run else None,
                task=task,
                data=data,
                config_path=config_path,
                overrides=tuple(overrides),
                verbose=verbose,
            )
            sys.exit(launch_local_workers(request, config.train))
        train_here(pipeline, config, run, worker, domain, runs_dir, name, started)

    return with_task_option(train, domain)


def single_process(config):
    """``config`` trained in this process alone (``--check`` of a multi-worker config checks it here)."""
    import dataclasses

    if config.train.strategy != "multi_worker":
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, strategy="default"))


def start_single_process(verbose: bool) -> None:
    import tensorflow as tf

    from apps.quiet import run_first_operation

    run_first_operation(verbose, lambda: tf.constant(0))


def start_process(train_config, verbose: bool):
    """TensorFlow's first operation, as ``train.strategy`` needs it. Returns this process's place in the cluster
    when TF_CONFIG names one (a multi-worker strategy, made now, before any other operation); None otherwise,
    also when ``train.workers`` asks this process to start the workers itself."""
    from apps.quiet import run_first_operation
    from pipelines.core import cluster

    if train_config.strategy != "multi_worker":
        start_single_process(verbose)
        return None
    worker = cluster.from_environment()
    if worker is None:
        if train_config.workers < 1:
            cluster.joined_strategy()  # says what multi_worker needs
        return None
    if train_config.workers not in (0, worker.size):
        raise UserError(
            f"train.workers={train_config.workers}, but TF_CONFIG names {worker.size} tasks; set train.workers=0 "
            "(TF_CONFIG decides) or unset TF_CONFIG to start the workers here"
        )
    handler = signal.getsignal(signal.SIGTERM)
    run_first_operation(verbose, lambda: cluster.join(worker, train_config.join_seconds))
    signal.signal(signal.SIGTERM, handler)  # TensorFlow's cluster start-up takes SIGTERM for itself
    if not worker.is_chief:
        click.echo(f"{worker.name} of {worker.size}: the chief writes the run directory", err=True)
    return worker


def resumable_run(pipeline, domain: str, resume_dir: Path):
    """The run ``--resume`` continues, and its config; a run that cannot go on is said so."""
    from pipelines.core import config as cfg
    from pipelines.core import training
    from pipelines.core.rundir import RunDir

    run = RunDir.open(resume_dir, domain)
    status = run.info().get("status")
    if status == "complete":
        raise UserError(f"{run.root} already finished training; start a new run with --config {run.config}")
    if status == "diverged":
        raise UserError(
            f"{run.root} diverged ({run.info().get('diverged_at')}); resuming would repeat it: start a new "
            f"run with --config {run.config} and a lower train.learning_rate"
        )
    training.check_same_config(run)
    return run, cfg.load_yaml(run.config, pipeline.config_class)


def train_here(pipeline, config, run, worker, domain: str, runs_dir, name, started: float) -> None:
    """Train in this process: a new run, or ``run`` resumed. A worker other than the chief trains a private
    copy, removed at its end (the chief writes the run)."""
    from pipelines.core import cluster

    private = None if worker is None or worker.is_chief else cluster.private_runs_dir()
    try:
        data_splits, model, run = ready_run(pipeline, config, run, domain, private or runs_dir, name, private)
        click.echo(f"run directory: {run.root}", err=True)
        metrics = train_in(pipeline, config, data_splits, model, run, domain, worker)
        epochs = run.info().get("epochs_done", config.train.epochs)  # fewer when early stopping ended it
        if private is not None:
            click.echo(f"{worker.name} trained {epochs} epochs; the chief wrote the run directory", err=True)
            return
        click.echo(
            summary(domain, run.root, pipeline.headline(metrics), epochs, time.time() - started, pipeline.predict_usage)
        )
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def ready_run(pipeline, config, run, domain: str, runs_dir, name, private):
    """The data, the model and the run to train in: ``run`` locked (or copied into ``private``), else a new one."""
    from pipelines.core import cluster, training
    from pipelines.core.rundir import RunDir

    if run is None:
        if private is None:
            RunDir.free_path(runs_dir, domain, name)  # a bad --name or --runs-dir: before loading data
        data_splits, model = training.prepare(pipeline, config)
        with writing_into(runs_dir):
            run = training.create_run(pipeline, config, runs_dir, name)
        run.lock()  # until this process ends
        return data_splits, model, run
    if private is not None:  # the chief holds and writes the run; this worker trains a copy
        run = RunDir(cluster.copy_for_resume(run.root, private))
    else:
        run.lock()  # until this process ends
    if run.info().get("status") == "training":  # and no process holds it (the lock is ours): its trainer stopped short
        click.echo(
            f"{run.root} was left 'training' by a process that ended before it could say so "
            "(killed, out of memory, or no disk space to write it); resuming",
            err=True,
        )
    data_splits, model = training.prepare(pipeline, config)
    training.check_same_data(run, data_splits)
    return data_splits, model, run


def train_in(pipeline, config, data_splits, model, run, domain: str, worker) -> dict:
    """Train in ``run``, saying in one line how it stopped when it stops short: a full disk, Ctrl-C or SIGTERM,
    a lost worker; each leaves the run resumable."""
    from pipelines.core import training

    resume = f"dlapps {domain} train --resume {run.root}"
    try:
        with writing_into(run.root, then=f"continue with: {resume}"):
            return training.train(pipeline, config, data_splits, model, run)
    except UserError:
        if run.info().get("status") == "training":  # the disk filled up: said, and resumable
            with contextlib.suppress(OSError):
                run.write_info(status="interrupted", stopped_by="no space left on the device")
        raise
    except KeyboardInterrupt as stop:
        ignore_further_stops()  # a second Ctrl-C or SIGTERM must not cut the status and the resume hint short
        if run.info().get("status") == "training":  # not "trained": then only evaluation is left
            run.write_info(status="interrupted")
        click.echo(f"\n{str(stop) or 'interrupted'}; continue with: {resume}", err=True)
        sys.exit(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED)
    except Exception as err:
        if worker is None or not lost_contact(err):
            raise
        if run.info().get("status") == "training":
            run.write_info(status="interrupted", stopped_by="lost contact with another worker")
        # TensorFlow's collective runtime, its peer gone, can fail to tear down at exit (a thread pool writing to a
        # closed pipe): Python reports that as "Exception ignored ..." with a traceback, which tells a user nothing.
        sys.unraisablehook = lambda unraisable: None
        raise UserError(
            f"{worker.name} lost contact with the other workers ({type(err).__name__}: one of them ended or "
            f"cannot be reached); start every worker again with: {resume}"
        ) from None


def lost_contact(err: Exception) -> bool:
    """A collective operation failed because a peer went away (its process ended, its machine is gone)."""
    import tensorflow as tf

    lost = (
        tf.errors.UnavailableError,
        tf.errors.CancelledError,
        tf.errors.AbortedError,
        tf.errors.DeadlineExceededError,
    )
    return isinstance(err, lost) or (isinstance(err, tf.errors.OpError) and "Collective" in str(err))


def requested_config(pipeline, config_path: Path | None, data: str | None, overrides: tuple[str, ...]):
    """The config ``--config``, ``--data`` and ``--set`` ask for, checked: the defaults where none is given."""
    from pipelines.core import config as cfg

    config = cfg.load_yaml(config_path, pipeline.config_class) if config_path else pipeline.config_class()
    return cfg.apply_overrides(config, (pipeline.data_overrides(data) if data else []) + list(overrides))


def check_only(pipeline, config, run=None) -> None:
    """``train --check``: everything training does before its first step (settings, data, the model built and
    compiled), checked and described; nothing trained, nothing written."""
    from pipelines.core import training

    data, model = training.prepare(pipeline, config)
    if run is not None:
        training.check_same_data(run, data)
    click.echo(
        f"settings, data and model OK: {data.describe()}; {config.model.name}, {model.count_params():,} parameters"
    )


def summary(domain: str, root: Path, headline: str, epochs: int, seconds: float, predict_usage: str) -> str:
    uses = DOMAINS[domain].verb
    return (
        f"\nTrained {domain} model for {epochs} epochs in {seconds:.0f} s; run directory {root}\n"
        f"Test split: {headline}\n"
        f"Next: tensorboard --logdir {root.parent.parent}\n"
        f"      dlapps {domain} evaluate {root}\n"
        f"      dlapps {domain} {uses} {root} {predict_usage}\n"
        f"      dlapps {domain} export {root} --format saved_model"
    )


def evaluate_command(domain: str) -> click.Command:
    @click.command("evaluate")
    @run_argument
    @verbose_option
    @reports_user_errors
    def evaluate(run_dir, verbose):
        """Evaluate a run's model on its test split: metrics.json, samples/*.png, logs/eval."""
        pipeline, run, config, model = open_trained_run(domain, run_dir, verbose)
        from pipelines.core.tracking import Tracker
        from pipelines.core.training import check_same_data, load_data

        data = load_data(pipeline, config)
        check_same_data(run, data)
        with writing_into(run.root):
            metrics = pipeline.evaluate(model, data, config, run, step=config.train.epochs)
            Tracker(run, config.track, domain).log_evaluation(metrics, step=config.train.epochs)
        click.echo(f"{pipeline.headline(metrics)}\nwritten: {run.metrics}, {run.samples}/")

    return evaluate


def predict_command(domain: str) -> click.Command:
    @click.command("predict")
    @run_argument
    @click.argument("inputs", nargs=-1, required=True)
    @verbose_option
    @reports_user_errors
    def predict(run_dir, inputs, verbose):
        """Classify inputs (files; texts for nlp) with a run's model: one line each (input, class, probability);
        a translation run prints each text and its translation.

        Put -- before inputs that start with a dash: predict RUN -- "-50% today only".
        """
        pipeline, run, config, model = open_trained_run(domain, run_dir, verbose)
        for line in pipeline.predict_lines(list(inputs), model, run.info(), config):
            click.echo(line)

    return predict


def sample_command(domain: str) -> click.Command:
    @click.command("sample")
    @run_argument
    @click.option("--count", default=64, show_default=True, help="Images to make.")
    @click.option(
        "--seed", default=0, show_default=True, help="First seed: image i comes from seed + i (same seed, same image)."
    )
    @click.option("--label", type=int, help="Class index, for a class-conditional model.")
    @click.option("--out", type=click.Path(path_type=Path), help="Grid PNG (default: RUN/samples/sample.png).")
    @click.option("--out-dir", type=click.Path(path_type=Path), help="Also one PNG per image here.")
    @verbose_option
    @reports_user_errors
    def sample(run_dir, count, seed, label, out, out_dir, verbose):
        """Make images with a run's generator: a grid PNG, and one PNG per image with --out-dir."""
        pipeline, run, config, model = open_trained_run(domain, run_dir, verbose)
        images = pipeline.sample(model, run.info(), count, seed, label)
        with writing_into(out_dir or run.samples):
            written = pipeline.write_samples(images, out or run.samples / "sample.png", out_dir, seed)
        click.echo("\n".join(str(path) for path in written))

    return sample


def export_command(domain: str) -> click.Command:
    @click.command("export")
    @run_argument
    @click.option(
        "--format", "fmt", type=click.Choice(["saved_model", "tflite"]), default="saved_model", show_default=True
    )
    @verbose_option
    @reports_user_errors
    def export(run_dir, fmt, verbose):
        """Export a run's model: a SavedModel on raw input (and TFLite from it)."""
        click.echo(str(export_run(domain, run_dir, fmt, verbose)))

    return export


def export_run(domain: str, run_dir: Path, fmt: str, verbose: bool) -> Path:
    """Export a trained run as ``fmt``; the path written."""
    pipeline, run, config, model = open_trained_run(domain, run_dir, verbose)
    from pipelines.core import export as exporter
    from pipelines.core.tracking import Tracker

    endpoints = pipeline.serving_endpoints(model, run.info(), config)
    with writing_into(run.export):
        path = exporter.export_saved_model(model, endpoints, run.saved_model)
        if fmt == "tflite":
            path = exporter.export_tflite(run.saved_model, pipeline.tflite_signature(), run.tflite)
        Tracker(run, config.track, domain).log_export(path)
    return path


def tune_command(domain: str) -> click.Command:
    @click.command("tune")
    @data_option
    @config_option
    @set_option
    @click.option(
        "--space",
        "space_items",
        multiple=True,
        metavar="KEY=VALUES",
        help="A setting to search: A,B,C (a choice), LO..HI or log:LO..HI (a range); repeatable.",
    )
    @click.option("--space-file", type=click.Path(path_type=Path), help="YAML of KEY: [A, B, C] or KEY: LO..HI lines.")
    @click.option("--algorithm", type=click.Choice(ALGORITHMS), default="random", show_default=True)
    @click.option("--trials", default=10, show_default=True, type=click.IntRange(1, 100_000), help="At most.")
    @click.option(
        "--max-minutes",
        default=0.0,
        type=click.FloatRange(0, 10**7),
        help="Start no trial after this many minutes (the running one finishes). Default: no limit.",
    )
    @click.option(
        "--objective", help="The validation value to compare trials by, e.g. val_accuracy. Default: train.monitor."
    )
    @click.option(
        "--workers",
        type=click.IntRange(1, 64),
        help="Trials at a time, each in a worker asking one oracle (KerasTuner's distributed mode on 127.0.0.1). "
        "Default: 1, or what the resumed search had.",
    )
    @click.option("--name", help="Search directory name (default: tune-<timestamp>).")
    @runs_dir_option
    @click.option("--resume", "resume_dir", type=click.Path(path_type=Path), help="Continue an interrupted search.")
    @verbose_option
    @reports_user_errors
    @sigterm_interrupts
    def tune(
        data,
        config_path,
        overrides,
        space_items,
        space_file,
        algorithm,
        trials,
        max_minutes,
        objective,
        workers,
        name,
        runs_dir,
        resume_dir,
        verbose,
        task=None,
    ):
        """Search settings with KerasTuner, each trial a train run; results.csv, best.yaml and HParams."""
        if importlib.util.find_spec("keras_tuner") is None:
            raise UserError("dlapps tune needs keras-tuner: pip install 'dlapps[tune]' (or -e '.[tune]')")
        if resume_dir:
            given = [
                flag
                for flag, value in (
                    ("--data", data),
                    ("--config", config_path),
                    ("--set", overrides),
                    ("--space", space_items),
                    ("--space-file", space_file),
                    ("--objective", objective),
                    ("--name", name),
                    ("--task", task),
                )
                if value
            ]
            if given:
                raise UserError(f"--resume continues a search as it was asked; drop {'/'.join(given)}")
            tune, request, base = resumed_search(domain, resume_dir, verbose)
            request.workers = workers or request.workers  # the trials it was running go to whichever asks first
        else:
            tune, request, base = new_search(
                domain,
                data,
                config_path,
                overrides,
                space_items,
                space_file,
                algorithm,
                trials,
                max_minutes,
                objective,
                workers or 1,
                name,
                runs_dir,
                verbose,
                task,
            )
        from apps.tuning import report
        from apps.tuning.search import search

        click.echo(f"search directory: {tune.root}", err=True)
        try:
            with writing_into(tune.root, then=f"continue with: dlapps {domain} tune --resume {tune.root}"):
                found = search(tune, request, base, seed=base.train.seed + 1, verbose=verbose)
        except KeyboardInterrupt as stop:
            click.echo(
                f"\n{str(stop) or 'interrupted'}; continue with: dlapps {domain} tune --resume {tune.root}", err=True
            )
            sys.exit(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED)
        click.echo(f"\n{report.table(found, request)}\n")
        top = report.best(found)
        if top is None:
            raise UserError(f"no trial finished; see {tune.oracle}/trial_*/train.log")
        click.echo(
            f"Search {request.status}: best {request.objective} {top.score:.4f} (trial {top.trial_id}, {top.run})\n"
            f"Next: dlapps {domain} train --config {tune.best_config}\n"
            f"      tensorboard --logdir {tune.root}    (HParams: every trial's settings and results)"
        )

    return with_task_option(tune, domain)


def new_search(
    domain,
    data,
    config_path,
    overrides,
    space_items,
    space_file,
    algorithm,
    trials,
    max_minutes,
    objective,
    workers,
    name,
    runs_dir,
    verbose,
    task,
):
    """A new search's directory, request and base config, every setting checked before anything is written."""
    if not space_items and not space_file:
        raise UserError("nothing to search: give settings with --space KEY=VALUES (e.g. model.width=16,32,64)")
    if task and task_in_config(config_path) not in (None, task):
        raise UserError(f"--task {task}, but {config_path} is a {task_in_config(config_path)} config; drop one")
    pipeline = load_pipeline(domain, verbose, task or task_in_config(config_path))
    from apps.tuning.folder import Request, TuneDir, default_name
    from apps.tuning.search import check_request, start
    from apps.tuning.space import parse_space, read_space_file, variants
    from pipelines.core import config as cfg
    from pipelines.core import training
    from pipelines.core.rundir import RunDir

    base = requested_config(pipeline, config_path, data, overrides)
    if objective is not None:
        if not objective.startswith("val_"):
            raise UserError(
                f"--objective {objective}: trials are compared on validation values (val_...), never "
                "on the test split; e.g. --objective val_loss"
            )
        base = cfg.apply_overrides(base, [f"train.monitor={objective}"])
    direction = pipeline.monitor_mode(base)
    space = parse_space(list(space_items), base) + (read_space_file(space_file, base) if space_file else [])
    keys = [dim.key for dim in space]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise UserError(f"search space: {', '.join(twice)} given in both --space and --space-file; give it once")
    for variant in variants(space, base):
        training.check_registered(pipeline, variant)  # a model.name choice the domain does not have, say
        pipeline.monitor_mode(variant)  # eval.top_k=5 while the objective is val_top_3_accuracy
    request = Request(domain, algorithm, base.train.monitor, direction, trials, max_minutes, space, workers)
    check_request(request, base)
    tune = TuneDir(RunDir.free_path(runs_dir, domain, name or default_name()))
    try:  # as `train --check` checks it (data read, model built), here: this process needs TensorFlow anyway
        training.prepare(pipeline, base)
    except UserError as err:
        raise UserError(f"the base config: {err}") from None
    with writing_into(tune.root.parent):
        start(tune, request, base)
    return tune, request, base


def resumed_search(domain: str, resume_dir: Path, verbose: bool):
    from apps.tuning.folder import TuneDir

    tune = TuneDir(resume_dir)
    request = tune.request()
    if request.domain != domain:
        raise UserError(f"{resume_dir} is a {request.domain} search; use: dlapps {request.domain} tune --resume ...")
    if request.status == "complete":
        raise UserError(
            f"{resume_dir} finished its {request.trials} trials; start a new search with --config "
            f"{tune.best_config} to search around its best"
        )
    pipeline = load_pipeline(domain, verbose, task_in_config(tune.base_config))
    from pipelines.core import config as cfg

    return tune, request, cfg.load_yaml(tune.base_config, pipeline.config_class)


def domain_group(domain: str) -> click.Group:
    group = click.Group(domain, help=DOMAINS[domain].description)
    uses = {"predict": predict_command, "sample": sample_command}[DOMAINS[domain].verb]
    for make in (train_command, evaluate_command, uses, export_command, tune_command):
        group.add_command(make(domain))
    return group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """dlapps: train, watch, evaluate and export deep-learning pipelines.

    \b
    dlapps vision train            train on the embedded data
    tensorboard --logdir runs      watch it
    dlapps list                    domains, data sources and models
    """


@main.command("list")
@verbose_option
def list_command(verbose):
    """Domains, their data sources and models, with one-line descriptions."""
    for domain, entry in DOMAINS.items():
        click.echo(f"{domain}: {entry.description}")
        for task in entry.tasks:
            pipeline = load_pipeline(domain, verbose, task)
            shown = f" (--task {task})" if len(entry.tasks) > 1 else ""
            for title, registry in (("data sources", pipeline.sources), ("models", pipeline.models)):
                click.echo(f"  {title}{shown}:")
                for name, doc in registry.describe().items():
                    click.echo(f"    {name:<20} {doc}")


def serve_targets(paths: list[Path], verbose: bool) -> dict[str, Path]:
    """Each argument's SavedModel under its name: a run directory is served under the run's name (exported first
    if it has no export, or one older than its model), a SavedModel folder under its own name."""
    targets: dict[str, Path] = {}
    for given in paths:
        name, path = named_path(given)
        if (path / "saved_model.pb").is_file():
            name, saved_model = name or (path.parent.parent.name if path.name == "saved_model" else path.name), path
        elif (path / "run.json").is_file():
            name, saved_model = name or path.resolve().name, exported_run(path, verbose)
        elif not path.exists():
            raise UserError(f"{shown(path)} not found; give a run directory or a SavedModel folder")
        else:
            raise UserError(f"{shown(path)} is neither a run directory (run.json) nor a SavedModel (saved_model.pb)")
        if ":" in name or not name.isprintable():
            raise UserError(f"{shown(path)}: a model served as {name!r} would not fit in a URL; rename the folder")
        if name in targets:
            raise UserError(
                f"two models would be served as '{name}' ({targets[name]} and {saved_model}); name one: NAME={path}"
            )
        targets[name] = saved_model
    return targets


def named_path(given: Path) -> tuple[str | None, Path]:
    """``NAME=PATH`` serves PATH as NAME; a path that exists as written is a path, whatever its characters."""
    text = str(given)
    if given.exists() or "=" not in text:
        return None, given
    name, path = text.split("=", 1)
    return name, Path(path)


def exported_run(path: Path, verbose: bool) -> Path:
    """A run's SavedModel, exported now if it has none or one older than the run's model."""
    from pipelines.core.rundir import RunDir

    run = RunDir(path)
    domain = run.info().get("domain")
    if domain not in DOMAINS:
        raise UserError(f"{shown(path)}/run.json names no domain dlapps knows ({domain!r})")
    exported = run.saved_model / "saved_model.pb"
    if not exported.is_file() or (run.model.is_file() and run.model.stat().st_mtime > exported.stat().st_mtime):
        click.echo(f"exporting {shown(path)} first (no export, or one older than its model) ...", err=True)
        export_run(domain, path, "saved_model", verbose)
    return run.saved_model


def check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise UserError(f"cannot listen on {host}:{port}: {err.strerror}; pick another --port") from None


@main.command("serve")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="TF Serving's REST port.")
@click.option(
    "--max-batch-size", default=32, show_default=True, type=click.IntRange(1, 4096), help="Examples per model call."
)
@click.option(
    "--batch-wait-ms",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 1000),
    help="How long a request waits for others to share its model call.",
)
@click.option(
    "--max-body-mb", default=32.0, show_default=True, type=click.FloatRange(0.001, 4096), help="Largest request body."
)
@verbose_option
@reports_user_errors
def serve(paths, host, port, max_batch_size, batch_wait_ms, max_body_mb, verbose):
    """Serve exported models over TF Serving's REST API, with a demo page at /.

    \b
    PATHS are run directories (exported first where needed) or SavedModel folders,
    each served under its run's (folder's) name, or NAME=PATH under NAME:
      GET  /v1/models/NAME             status
      GET  /v1/models/NAME/metadata    signatures and their tensors
      POST /v1/models/NAME:predict     {"instances": [...]} or {"inputs": ...}
    """
    missing = [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"dlapps serve needs {' and '.join(missing)}: pip install 'dlapps[serve]' (or -e '.[serve]')")
    from apps.quiet import start_tensorflow

    check_port_free(host, port)  # before minutes of exporting; uvicorn checks again when it binds
    start_tensorflow(verbose)
    targets = serve_targets(list(paths), verbose)
    from apps.serving.server import run_server

    run_server(targets, host, port, max_batch_size, batch_wait_ms / 1000, int(max_body_mb * (1 << 20)))


for _domain in DOMAINS:
    main.add_command(domain_group(_domain))


if __name__ == "__main__":  # how tune starts its trials (python -m apps.cli)
    from apps.lifeline import follow_parent

    follow_parent()
    main()
