"""What a search shows and leaves behind: a progress line per trial, results.csv, best.yaml, a sorted table on
the console, and TensorBoard's HParams experiment (one session per trial, for its parallel-coordinates view)."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import shutil
from pathlib import Path
from typing import Any

from apps.tuning.folder import write_atomically
from pipelines.core.rundir import RunDir


@dataclasses.dataclass
class TrialRow:
    trial_id: str
    status: str  # COMPLETED, FAILED, RUNNING (interrupted), ...
    score: float | None
    values: dict  # the searched settings
    epochs: int
    seconds: float | None
    run: Path
    message: str = ""


def collect(oracle, tune, request, base) -> list[TrialRow]:
    """Every trial the oracle knows, best first (finished ones by their objective, then the rest by id)."""
    rows = []
    for trial_id, trial in sorted(oracle.trials.items()):
        values = trial.hyperparameters.values
        run = tune.trial_run(request.domain, trial_id)
        info = RunDir(run).info() if (run / "run.json").is_file() else {}
        rows.append(
            TrialRow(
                trial_id=trial_id,
                status=str(trial.status),
                score=None if trial.score is None or not math.isfinite(trial.score) else float(trial.score),
                values={dim.key: dim.value_of(values[dim.key]) if dim.key in values else None for dim in request.space},
                epochs=int(values.get("tuner/epochs", info.get("epochs_done", base.train.epochs))),
                seconds=info.get("train_seconds"),
                run=run,
                message=failure_line(trial.message) or failure_note(tune, trial_id),
            )
        )
    sign = 1 if request.direction == "min" else -1
    return sorted(rows, key=lambda row: (row.score is None, sign * (row.score or 0), row.trial_id))


def failure_line(message: str | None) -> str:
    """KerasTuner keeps a failed trial's traceback; its last line, without the exception's name, says why."""
    lines = [line for line in (message or "").splitlines() if line.strip()]
    return lines[-1].split("Error: ", 1)[-1] if lines else ""


def failure_note(tune, trial_id: str) -> str:
    note = tune.failure_note(trial_id)
    return note.read_text(encoding="utf-8").strip() if note.is_file() else ""


def best(trials: list[TrialRow]) -> TrialRow | None:
    return next((row for row in trials if row.score is not None), None)


def write_results(tune, trials: list[TrialRow], request) -> None:
    keys = [dim.key for dim in request.space]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "status", request.objective, *keys, "epochs", "train_seconds", "run", "message"])
    for row in trials:
        writer.writerow(
            [
                row.trial_id,
                row.status.lower(),
                "" if row.score is None else f"{row.score:.6g}",
                *(row.values[key] for key in keys),
                row.epochs,
                "" if row.seconds is None else row.seconds,
                os.path.relpath(row.run, tune.root),
                row.message,
            ]
        )
    write_atomically(tune.results, out.getvalue())


def write_best_config(tune, trials: list[TrialRow]) -> None:
    """The best trial's own config.yaml (every setting resolved), as best.yaml: ``train --config`` retrains it."""
    top = best(trials)
    if top is not None and (top.run / "config.yaml").is_file():
        partial = tune.best_config.with_name(".best.yaml.partial")
        shutil.copyfile(top.run / "config.yaml", partial)
        os.replace(partial, tune.best_config)


def table(trials: list[TrialRow], request) -> str:
    """The results as aligned columns, best first, for the console."""
    keys = [dim.key for dim in request.space]
    header = ["trial", request.objective, *keys, "epochs", "status"]
    rows = [
        [
            row.trial_id,
            "-" if row.score is None else f"{row.score:.4f}",
            *(shown_value(row.values[key]) for key in keys),
            str(row.epochs),
            row.status.lower() + (f": {row.message}" if row.message and row.score is None else ""),
        ]
        for row in trials
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)), line[-1]])
        for line in [header, *rows]
    )


def shown_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def progress_line(ended: TrialRow, trials: list[TrialRow], request, per_trial: float, elapsed: float) -> str:
    """``[3/10] trial 02 model.width=32 ...: val_accuracy 0.9712 (best 0.9750, trial 01) in 41 s; about 5 min
    left`` (``per_trial``: the mean wall time of a trial so far, ``elapsed``: the time this process has run)."""
    done = sum(row.status.upper() in ("COMPLETED", "FAILED", "INVALID") for row in trials)
    settings = " ".join(f"{key}={shown_value(value)}" for key, value in ended.values.items())
    if ended.score is None:
        outcome = f"failed: {ended.message}" if ended.message else ended.status.lower()
    else:
        outcome = f"{request.objective} {ended.score:.4f}"
    top = best(trials)
    best_part = f" (best {top.score:.4f}, trial {top.trial_id})" if top is not None else ""
    took = f" in {ended.seconds:.0f} s" if ended.seconds is not None else ""
    left = time_left(per_trial * max(0, request.trials - done), request, elapsed)
    return f"[{done}/{request.trials}] trial {ended.trial_id} {settings}: {outcome}{best_part}{took}{left}"


def time_left(estimate: float, request, elapsed: float) -> str:
    if request.max_minutes:
        estimate = min(estimate, max(0.0, request.max_minutes * 60 - elapsed))
    if estimate <= 0:
        return ""
    return f"; about {estimate / 60:.0f} min left" if estimate >= 60 else f"; about {estimate:.0f} s left"


# --- TensorBoard HParams ---


def write_experiment(tune, request) -> None:
    """The HParams experiment at the search's root: the searched settings and the objective, so TensorBoard's
    HParams view shows one session per trial (each trial's run already starts one in its logs/)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    hparams = []
    for dim in request.space:
        if dim.kind == "choice":
            hparams.append(hp.HParam(dim.key, hp.Discrete(list(dim.choices))))
        elif dim.kind == "int":
            hparams.append(hp.HParam(dim.key, hp.IntInterval(int(dim.low), int(dim.high))))
        else:
            hparams.append(hp.HParam(dim.key, hp.RealInterval(float(dim.low), float(dim.high))))
    name = request.objective.removeprefix("val_")
    metrics = [
        hp.Metric(score_tag(request), display_name=f"best {request.objective}"),
        hp.Metric(f"epoch_{name}", group="validation", display_name=f"{request.objective} (last epoch)"),
        hp.Metric("epoch_loss", group="train", display_name="loss (last epoch)"),
    ]
    folder = tune.root / "logs"
    shutil.rmtree(folder, ignore_errors=True)  # one experiment summary, whatever an earlier start wrote
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()


def score_tag(request) -> str:
    return f"tune/best_{request.objective}"


def write_trial_score(tune, request, row: TrialRow) -> None:
    """The trial's objective as a scalar in its session folder (its run's logs/), where the HParams view reads it."""
    if row.score is None or not (row.run / "logs").is_dir():
        return
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(row.run / "logs"))
    with writer.as_default():
        tf.summary.scalar(score_tag(request), row.score, step=row.epochs)
    writer.close()
