"""The search: a KerasTuner oracle asks for trials; each trial is ``dlapps DOMAIN train`` in a process of its own.

```
runs/<domain>/tune-<time>/
  tune.json        what was asked (space, algorithm, objective, trials, budget) and the search's status
  base.yaml        the config every trial starts from
  oracle/          KerasTuner's state (oracle.json, trial_NN/trial.json) and each trial's config.yaml, train.log
  <domain>/trial_NN/   each trial's run directory, as ``train`` writes it (logs, checkpoints, metrics)
  results.csv      one row per trial, best first; best.yaml: the best trial's config, ready for ``train --config``
```
A process per trial: its memory goes back to the system when it ends (KerasTuner's trials in one process grow,
keras-tuner#395, #873), a failing trial cannot take the search with it, and an interrupted trial is a run that
``train --resume`` continues.
"""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import keras_tuner

from apps.lifeline import child_environment
from apps.tuning import report
from apps.tuning.folder import Request, TuneDir, write_atomically
from apps.tuning.space import overrides
from pipelines.core import config as cfg
from pipelines.core.errors import UserError
from pipelines.core.rundir import RunDir

HYPERBAND_FACTOR = 3
INTERRUPTED_CODES = (130, 143)  # what `train` exits with after Ctrl-C / SIGTERM: state kept, resumable


def make_oracle(request: Request, base: Any, seed: int) -> keras_tuner.Oracle:
    """The KerasTuner oracle ``request.algorithm`` names, over ``request.space``."""
    objective = keras_tuner.Objective(request.objective, request.direction)
    hyperparameters = keras_tuner.HyperParameters()
    for dim in request.space:
        if dim.kind == "choice":
            hyperparameters.Choice(dim.key, list(dim.choices), ordered=None)
        elif dim.kind == "int":
            hyperparameters.Int(dim.key, int(dim.low), int(dim.high), sampling="log" if dim.log else "linear")
        else:
            hyperparameters.Float(dim.key, dim.low, dim.high, sampling="log" if dim.log else "linear")
    common = dict(objective=objective, hyperparameters=hyperparameters, seed=seed, tune_new_entries=False)
    common["allow_new_entries"] = request.algorithm == "hyperband"  # its tuner/epochs, tuner/round, ...
    if request.algorithm == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=request.trials, **common)
    if request.algorithm == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=request.trials, **common)
    if request.algorithm == "grid":
        return keras_tuner.oracles.GridSearchOracle(max_trials=request.trials, **common)
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=base.train.epochs, factor=HYPERBAND_FACTOR, **common)
    oracle.max_trials = request.trials  # Hyperband plans its own brackets; --trials caps them
    return oracle


def check_request(request: Request, base: Any) -> None:
    """What the chosen algorithm cannot search: one line before anything is written."""
    keys = [dim.key for dim in request.space]
    if "train.monitor" in keys:
        raise UserError("search space: train.monitor is what a search compares; choose it with --objective")
    if request.algorithm == "grid":
        for dim in request.space:
            if not dim.finite:
                raise UserError(
                    f"--algorithm grid lists every value, but {dim} is a float range; give its values: {dim.key}=A,B,C"
                )
    if request.algorithm == "hyperband":
        if "train.epochs" in keys:
            raise UserError(
                "--algorithm hyperband chooses each trial's epochs itself; drop train.epochs from the space"
            )
        if base.train.epochs < HYPERBAND_FACTOR:
            raise UserError(
                f"--algorithm hyperband trains trials for up to train.epochs epochs, and needs at least "
                f"{HYPERBAND_FACTOR}; got {base.train.epochs}: --set train.epochs=9, say"
            )


class TrialRunner(keras_tuner.engine.base_tuner.BaseTuner):
    """Runs each trial the oracle creates as ``dlapps DOMAIN train`` (or ``--resume`` of its interrupted run)."""

    def __init__(self, oracle, tune: TuneDir, request: Request, base: Any, verbose: bool, worker: bool = False):
        """``worker``: one of ``--workers`` processes, asking the search's process (KerasTuner's chief, which owns
        the oracle and reports) for trials; its own oracle only describes the space."""
        with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner prints "Reloading Tuner from ..."
            super().__init__(oracle, directory=str(tune.root), project_name=tune.oracle.name)
        # KerasTuner prints each failed trial's traceback; the progress line and results.csv say why in one line
        keras_tuner.src.config.DEBUG = False
        self.tune, self.request, self.base, self.verbose, self.worker = tune, request, base, verbose, worker
        self.started = time.monotonic()
        self.began: dict[str, float] = {}  # when each trial this search process handed out started
        self.trial_seconds: list[float] = []  # wall time of each trial that ended, for the time left
        self.stopped_by_time = False
        self.failure: str | None = None  # why the search ends early: too many failed trials in a row
        if worker:
            self.oracle.create_trial = waiting_when_idle(self.oracle.create_trial)
        else:
            self.oracle.verbose = 0  # its trial tables: our progress line says it in one
            self.oracle._check_consecutive_failures = self.stopping_on_failures(self.oracle._check_consecutive_failures)

    # --- KerasTuner's hooks ---

    def pre_create_trial(self):
        if not self.worker:  # the chief decides for its workers when they ask
            self.stop_if_out_of_time()

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self.began[trial.trial_id] = time.monotonic()

    def run_trial(self, trial, *args, **kwargs) -> dict:
        values = trial.hyperparameters.values
        run = self.tune.trial_run(self.request.domain, trial.trial_id)
        folder = self.tune.trial_folder(trial.trial_id)
        command = self.train_command(run, folder, values)
        if command is not None:
            code = run_trial_process(command, folder / "train.log", self.verbose)
            if code in INTERRUPTED_CODES:
                raise KeyboardInterrupt(f"trial {trial.trial_id} was stopped")
            if code != 0:
                raise keras_tuner.errors.FailedTrialError(last_error(folder / "train.log", code))
        value = RunDir(run).info().get(f"best_{self.request.objective}")
        if value is None:
            raise keras_tuner.errors.FailedTrialError(f"the run logged no {self.request.objective}")
        return {self.request.objective: value}

    def on_trial_end(self, trial):
        if self.worker and trial.message:
            write_atomically(self.tune.failure_note(trial.trial_id), report.failure_line(trial.message) + "\n")
        super().on_trial_end(trial)  # the oracle records it and saves its state (a worker's: the chief's oracle)
        if not self.worker:
            self.report(trial.trial_id)

    # --- the search's own part: time budget and reporting, in the process that owns the oracle ---

    def stopping_on_failures(self, check):
        """KerasTuner's check for too many failed trials in a row raises inside ``end_trial``, before the trial is
        saved and its worker freed (a worker would get the ended trial back); here it records why and hands out
        no further trial instead, so the oracle ends in order and the search says why."""

        def checked() -> None:
            try:
                check()
            except RuntimeError as err:  # "Number of consecutive failures exceeded the limit of 3." + a traceback
                if self.failure is None:
                    last = self.oracle.trials[self.oracle.end_order[-1]]
                    why = report.failure_line(last.message) or report.failure_note(self.tune, last.trial_id)
                    self.failure = f"{str(err).splitlines()[0].rstrip('.')}: {why}"
                self.oracle.max_trials = len(self.oracle.trials)

        return checked

    def stop_if_out_of_time(self) -> None:
        budget = self.request.max_minutes * 60
        if budget and time.monotonic() - self.started >= budget and not self.stopped_by_time:
            self.stopped_by_time = True  # the oracle stops once it holds as many trials as it has now
            self.oracle.max_trials = max(1, len(self.oracle.trials))

    def report(self, trial_id: str) -> None:
        """results.csv, the trial's HParams score and its progress line, once the oracle has recorded it."""
        if trial_id in self.began:
            self.trial_seconds.append(time.monotonic() - self.began.pop(trial_id))
        trials = report.collect(self.oracle, self.tune, self.request, self.base)
        report.write_results(self.tune, trials, self.request)
        ended = next(row for row in trials if row.trial_id == trial_id)
        report.write_trial_score(self.tune, self.request, ended)
        seconds = self.trial_seconds
        per_trial = sum(seconds) / len(seconds) / self.request.workers if seconds else 0.0  # --workers at a time
        print(report.progress_line(ended, trials, self.request, per_trial, time.monotonic() - self.started), flush=True)

    # --- a trial as a training run ---

    def train_command(self, run: Path, folder: Path, values: dict) -> list[str] | None:
        """The ``train`` command that trains (or finishes) the trial's run; None when it is already complete."""
        entry = [sys.executable, "-m", "apps.cli", self.request.domain, "train"]
        if (run / "run.json").is_file() and (run / "config.yaml").is_file():
            status = RunDir(run).info().get("status")
            if status == "complete":  # finished before the search could record it
                return None
            if status == "diverged":
                raise keras_tuner.errors.FailedTrialError(f"diverged ({RunDir(run).info().get('diverged_at')})")
            wait_for_unlock(run)
            return [*entry, "--resume", str(run)]
        if run.exists():  # stopped while its folder was being made: nothing trained yet
            import shutil

            shutil.rmtree(run)
        config_path = folder / "config.yaml"
        folder.mkdir(parents=True, exist_ok=True)
        cfg.dump_yaml(self.trial_config(values), config_path)
        return [*entry, "--config", str(config_path), "--runs-dir", str(self.tune.root), "--name", run.name]

    def trial_config(self, values: dict) -> Any:
        settings = {dim.key: dim.value_of(values[dim.key]) for dim in self.request.space if dim.key in values}
        items = overrides(settings)
        if "tuner/epochs" in values:  # Hyperband's budget for this trial
            items.append(f"train.epochs={values['tuner/epochs']}")
        try:
            return cfg.apply_overrides(self.base, items)
        except UserError as err:
            raise keras_tuner.errors.FailedTrialError(str(err)) from None


def waiting_when_idle(create_trial):
    """``create_trial`` that pauses after an IDLE answer (Hyperband waiting for another worker's trial to end a
    round), where KerasTuner's loop would ask again at once, taking a core from the trials."""

    def create(tuner_id):
        trial = create_trial(tuner_id)
        if trial.status == keras_tuner.engine.trial.TrialStatus.IDLE:
            time.sleep(1)
        return trial

    return create


def run_trial_process(command: list[str], log: Path, verbose: bool) -> int:
    """Run a trial's ``train`` to its end, its output appended to ``log`` (and shown with --verbose).

    The trial runs in a session of its own, so a Ctrl-C reaches this process only; it is passed on as one
    SIGTERM, which ``train`` handles as Ctrl-C (state kept), and this process waits for it to say so. Should
    this process die, the kernel sends the trial SIGTERM too, so no orphan trains on holding the run's lock.
    """
    with open(log, "ab") as sink:
        child = subprocess.Popen(
            command,
            stdout=None if verbose else sink,
            stderr=None if verbose else subprocess.STDOUT,
            env=child_environment(),
            start_new_session=True,
        )
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=300)
            except subprocess.TimeoutExpired:
                child.kill()
            raise


def wait_for_unlock(run: Path, timeout: float = 300) -> None:
    """Until no process holds ``run``'s lock: a trial told to stop (its search was killed) may still be saving."""
    import fcntl

    path = run / ".lock"
    if not path.is_file():
        return
    deadline = time.monotonic() + timeout
    with open(path, "rb") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(lock, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # `train --resume` names the holder in its one line
                time.sleep(0.2)


def last_error(log: Path, code: int) -> str:
    """The line a failed trial ended with: its ``error:`` line, or the last line of its output."""
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else (lines[-1] if lines else f"train exited with code {code}")


def start(tune: TuneDir, request: Request, base: Any) -> None:
    """Make the search's folder: its request and the base config every trial starts from."""
    tune.root.mkdir(parents=True)
    cfg.dump_yaml(base, tune.base_config)
    tune.write_request(request)


def search(tune: TuneDir, request: Request, base: Any, seed: int, verbose: bool) -> list:
    """Run (or continue) the search until the oracle stops, ``--trials`` are done or the time is up; the trials."""
    RunDir(tune.root).lock()  # one process per search, as per run
    runner = TrialRunner(make_oracle(request, base, seed), tune, request, base, verbose)
    request.status = "searching"
    tune.write_request(request)
    report.write_experiment(tune, request)  # TensorBoard's HParams view fills in as trials end
    try:
        if request.workers > 1:
            from apps.tuning.workers import serve_workers

            serve_workers(runner)
        else:
            runner.search()
    except KeyboardInterrupt:
        request.status = "interrupted"
        raise
    except UserError:  # a worker lost, a full disk: --resume goes on once it is seen to
        request.status = "failed"
        raise
    else:
        if runner.failure is not None:
            request.status = "failed"
            raise UserError(f"the search stopped: {runner.failure}; see {tune.oracle}/trial_*/train.log")
        request.status = "stopped after --max-minutes" if runner.stopped_by_time else "complete"
    finally:
        tune.write_request(request)
        trials = report.collect(runner.oracle, tune, request, base)
        report.write_results(tune, trials, request)
        report.write_best_config(tune, trials)
    return trials
