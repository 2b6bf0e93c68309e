"""``tune --workers N``: N trials at a time, in KerasTuner's distributed mode on loopback.

The search's process is KerasTuner's chief: it owns the oracle, serves it over gRPC on 127.0.0.1 (a free port)
and reports each trial as it ends (progress line, results.csv, HParams), as a one-worker search does itself. Each
worker is ``python -m apps.tuning.worker TUNE_DIR`` with KERASTUNER_TUNER_ID / _ORACLE_IP / _ORACLE_PORT set:
a ``TrialRunner`` whose oracle is KerasTuner's client, asking for a trial, training it as a ``train`` process,
sending back its score, until the oracle says stop.

Stopping: Ctrl-C or SIGTERM reaches the search's process only (workers run in sessions of their own); it sends
each worker SIGTERM, which stops its trial as ``train`` stops (epochs kept) and waits for them. Killed with -9,
the kernel tells the workers (SIGTERM), and they stop their trials the same way. ``--resume`` then hands the
trials that were running to whichever worker asks first (KerasTuner's retry queue), resumed from their epochs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent import futures

from apps.lifeline import child_environment, stop_children
from apps.tuning.folder import TuneDir
from apps.tuning.search import TrialRunner, last_error
from pipelines.core.errors import UserError

WORKER_STOP_SECONDS = 330  # a worker waits up to 300 s for its trial to save and stop; then it is killed


def serve_workers(runner: TrialRunner) -> None:
    """Serve ``runner``'s oracle to ``--workers`` worker processes until each has been told to stop."""
    import grpc
    from keras_tuner.src.protos import get_service_grpc

    runner.save()  # the chief's tuner file: --resume reloads the oracle through it
    servicer = ReportingServicer(runner)
    executor = futures.ThreadPoolExecutor(max_workers=1)  # one request at a time, as the oracle wants
    server = grpc.server(executor)
    get_service_grpc().add_OracleServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    workers: list[subprocess.Popen] = []
    try:
        # started before the server's threads are (gRPC warns of forking beside them); clients wait until it is ready
        for worker in range(runner.request.workers):
            workers.append(start_worker(runner, worker, port))
        server.start()
        while any(process.poll() is None for process in workers) and not any(map(stopped_short, workers)):
            time.sleep(0.2)
    finally:
        from apps.cli import ignore_further_stops

        ignore_further_stops()  # stopping the workers takes as long as their trials take to save
        stop_children(workers, WORKER_STOP_SECONDS)  # those still running: after Ctrl-C, or when another stopped short
        server.stop(grace=None).wait()
        executor.shutdown(wait=True)  # no report may still be writing when the search writes its own
    if servicer.error is not None:
        raise servicer.error  # in this thread, where a full disk or a bad path becomes one line
    say_how_workers_ended(runner.tune, workers)


def stopped_short(process: subprocess.Popen) -> bool:
    """A worker that ended other than by the oracle's stop: its trial waits for it, so the search stops too."""
    return process.returncode not in (None, 0)


def say_how_workers_ended(tune: TuneDir, workers: list[subprocess.Popen]) -> None:
    """Nothing when every worker ended because the oracle said stop; else one line, or an interruption."""
    for worker, process in enumerate(workers):
        code = process.returncode
        if code in (0, 130, 143, -signal.SIGINT, -signal.SIGTERM):
            continue
        log = tune.worker_log(worker)
        if code == -signal.SIGKILL:  # it could say nothing
            raise UserError(f"tune worker {worker} killed (SIGKILL: out of memory?); see {log}, then --resume")
        raise UserError(
            f"tune worker {worker} stopped (exit code {code}): {last_error(log, code)}; see {log}, then --resume"
        )
    if any(process.returncode for process in workers):  # a worker was stopped from outside: resumable
        raise KeyboardInterrupt("a tune worker was stopped")


def start_worker(runner: TrialRunner, worker: int, port: int) -> subprocess.Popen:
    environment = child_environment(
        KERASTUNER_TUNER_ID=f"worker{worker}", KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port)
    )
    command = [sys.executable, "-m", "apps.tuning.worker", str(runner.tune.root)]
    if runner.verbose:
        command.append("--verbose")
    with open(runner.tune.worker_log(worker), "ab") as log:
        return subprocess.Popen(
            command,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the search's process, which stops the workers in order
        )


def protos():
    """KerasTuner's gRPC messages."""
    from keras_tuner.src import protos

    return protos.get_service()


def _servicer_base():
    from keras_tuner.src.distribute import oracle_chief

    return oracle_chief.OracleServicer


class ReportingServicer(_servicer_base()):
    """KerasTuner's oracle service, with the search's own part: the time budget before a trial is handed out, a
    report once it has ended. An error here (a full disk) stops the search: no trial is handed out after it, and
    the search's thread raises it once the workers have ended."""

    def __init__(self, runner: TrialRunner):
        super().__init__(runner.oracle)
        self.runner = runner
        self.error: BaseException | None = None

    def CreateTrial(self, request, context):  # noqa: N802 (gRPC's method names)
        with self.stopping_on_error():
            self.runner.stop_if_out_of_time()
            if self.error is None:
                response = super().CreateTrial(request, context)
        if self.error is not None:  # the oracle may be half way through an update: a stop, whatever it holds
            from keras_tuner.src.engine import trial as trial_module

            stop = trial_module.Trial(self.oracle.hyperparameters, status=trial_module.TrialStatus.STOPPED)
            return protos().CreateTrialResponse(trial=stop.to_proto())
        handed_out = response.trial.trial_id
        if any(trial.trial_id == handed_out for trial in self.oracle.ongoing_trials.values()):
            self.runner.began.setdefault(handed_out, time.monotonic())
        return response

    def EndTrial(self, request, context):  # noqa: N802
        with self.stopping_on_error():
            super().EndTrial(request, context)
            self.oracle.save()  # as a tuner does after end_trial: the state saved there still lists the trial running
            self.runner.report(request.trial.trial_id)
        return protos().EndTrialResponse()

    @contextlib.contextmanager
    def stopping_on_error(self):
        try:
            yield
        except Exception as err:
            self.error = self.error or err
            self.oracle.max_trials = len(self.oracle.trials)


def worker_main(argv: list[str]) -> int:
    """One worker: trials from the chief's oracle until it says stop; 130/143 when stopped from outside."""
    from pathlib import Path

    from apps.cli import Terminated, load_pipeline, task_in_config
    from apps.tuning.search import make_oracle
    from pipelines.core import config as cfg

    def terminated(signum, frame):
        raise Terminated("terminated (SIGTERM)")

    signal.signal(signal.SIGTERM, terminated)
    tune = TuneDir(Path(argv[0]))
    verbose = "--verbose" in argv
    request = tune.request()
    pipeline = load_pipeline(request.domain, verbose, task_in_config(tune.base_config))
    base = cfg.load_yaml(tune.base_config, pipeline.config_class)
    try:
        # the oracle here only describes the space; the chief's decides (its seed is the one that counts)
        runner = TrialRunner(make_oracle(request, base, seed=0), tune, request, base, verbose, worker=True)
        runner.search()
    except KeyboardInterrupt as stop:
        print(f"{os.environ.get('KERASTUNER_TUNER_ID')}: {stop or 'interrupted'}", flush=True)
        return 143 if isinstance(stop, Terminated) else 130
    return 0
