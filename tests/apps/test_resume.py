"""Interrupt training (Ctrl-C, then a hard kill) and resume: the run ends as if never stopped."""

import json
import signal

import pytest

from tests.helpers import (
    FAST,
    dlapps,
    killed_then_resumed,
    optimizer_steps,
    same_weights,
    start_cli,
    wait_for_epoch,
)

EPOCHS, STEPS = 120, 4  # long enough that the first run is still training when Ctrl-C comes


def test_interrupt_then_kill_then_resume(tmp_path):
    import keras

    run = tmp_path / "vision" / "r"
    first = start_cli(
        "vision",
        "train",
        "--runs-dir",
        tmp_path,
        "--name",
        "r",
        "--set",
        f"train.epochs={EPOCHS}",
        "--set",
        f"train.steps_per_epoch={STEPS}",
        "--set",
        "train.batch_size=16",
        "--set",
        "model.width=8",
        "--set",
        "eval.every_epochs=0",
    )
    done = wait_for_epoch(first, run, 1)
    first.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert f"dlapps vision train --resume {run}" in err and "Traceback" not in err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"

    second = start_cli("vision", "train", "--resume", run)
    wait_for_epoch(second, run, done + 2)  # it went on from where the first stopped
    second.kill()  # no chance to clean up
    second.communicate(timeout=60)

    third = start_cli("vision", "train", "--resume", run)
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0, err
    assert f"Epoch {EPOCHS}/{EPOCHS}" in out + err and "Epoch 1/" not in out + err
    model = keras.models.load_model(run / "model.keras")
    # Every optimizer step of every epoch happened exactly once: nothing repeated, nothing lost.
    assert int(model.optimizer.iterations.numpy()) == EPOCHS * STEPS
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def test_resume_after_fit_finished_only_evaluates(tmp_path):
    """Killed while evaluating (status 'trained'): resuming evaluates, it does not train again."""
    sets = [x for item in FAST for x in ("--set", item)]
    assert dlapps("vision", "train", "--runs-dir", tmp_path, "--name", "r", *sets).exit_code == 0
    run = tmp_path / "vision" / "r"
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "trained"}))
    (run / "metrics.json").unlink()
    before = (run / "model.keras").stat().st_mtime_ns
    result = dlapps("vision", "train", "--resume", run)
    assert result.exit_code == 0, result.stderr
    assert "Epoch" not in result.output and (run / "metrics.json").is_file()
    assert (run / "model.keras").stat().st_mtime_ns == before
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("mixed", ["false", "true"], ids=["float32", "mixed_float16"])
def test_a_two_optimizer_gan_resumes_after_a_kill(tmp_path, mixed):
    """Generator and discriminator optimizers both continue from the last finished epoch (loss-scaling ones too)."""
    run = tmp_path / "generative" / "g"
    epochs, steps = 6, 3
    settings = [
        f"train.epochs={epochs}",
        f"train.steps_per_epoch={steps}",
        "train.batch_size=16",
        "model.width=8",
        "model.latent_dim=8",
        "eval.samples=50",
        "eval.epoch_samples=20",
        "eval.grid=4",
        "eval.classifier_steps=10",
        f"train.mixed_precision={mixed}",
    ]
    second = killed_then_resumed(
        run, "generative", "train", "--runs-dir", tmp_path, "--name", "g", *[x for s in settings for x in ("--set", s)]
    )
    assert second.returncode == 0, second.stderr
    assert "Epoch 1/" not in second.stdout + second.stderr
    assert optimizer_steps(run / "model.keras") == {
        "optimizer": epochs * steps,
        "discriminator_optimizer": epochs * steps,
    }


def long_run(tmp_path, epochs: int, steps: int) -> list:
    settings = [f"train.epochs={epochs}", f"train.steps_per_epoch={steps}", "train.batch_size=16", "model.width=8"]
    return ["vision", "train", "--runs-dir", tmp_path, "--name", "r", *[x for s in settings for x in ("--set", s)]]


def test_sigterm_stops_as_ctrl_c_does_and_a_second_trainer_is_refused(tmp_path):
    from tests.helpers import assert_one_line_error

    run = tmp_path / "vision" / "r"
    # Long enough that it still trains when SIGTERM comes, however slow the refused second trainer is to start
    first = start_cli(*long_run(tmp_path, 10 * EPOCHS, STEPS), "--set", "eval.every_epochs=0")
    wait_for_epoch(first, run, 1)
    assert_one_line_error(dlapps("vision", "train", "--resume", run), "is being trained by process", str(first.pid))
    first.terminate()  # SIGTERM: what kill, systemd and Slurm send
    _, err = first.communicate(timeout=60)
    assert first.returncode == 143, err
    assert f"terminated (SIGTERM); continue with: dlapps vision train --resume {run}" in err and "Traceback" not in err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


def test_kill_9_at_random_moments_loses_nothing(tmp_path):
    """Three kills at random moments (some land while the resume state is written), each followed by --resume
    (the dead process's lock is no obstacle); the run ends with every optimizer step done exactly once, and
    with the weights of the same run never stopped (same data order, same random draws)."""
    import random
    import time

    import keras

    from tests.helpers import finished_epochs

    epochs, steps, rng = 30, 2, random.Random(0)
    run = tmp_path / "vision" / "r"
    process = start_cli(*long_run(tmp_path, epochs, steps), "--set", "eval.every_epochs=0")
    for _ in range(3):
        wait_for_epoch(process, run, finished_epochs(run) + 1)
        time.sleep(rng.uniform(0, 0.3))
        process.kill()
        process.communicate(timeout=60)
        process = start_cli("vision", "train", "--resume", run)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    model = keras.models.load_model(run / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == epochs * steps
    never_stopped = tmp_path / "straight"
    straight = start_cli(*long_run(never_stopped, epochs, steps), "--set", "eval.every_epochs=0")
    assert straight.wait(timeout=300) == 0
    assert same_weights(run / "model.keras", never_stopped / "vision" / "r" / "model.keras")


def test_a_resumed_run_of_whole_epochs_ends_as_one_never_stopped(tmp_path):
    """Without train.steps_per_epoch (one pass of the split an epoch, reshuffled each time), killed after its
    second epoch and resumed, a run with augmentation and dropout ends with the weights of one never stopped."""
    settings = ["train.epochs=4", "train.batch_size=64", "model.width=8", "model.dropout=0.2", "eval.every_epochs=0"]
    args = [x for item in settings for x in ("--set", item)]
    straight = start_cli("vision", "train", "--runs-dir", tmp_path, "--name", "straight", *args)
    assert straight.wait(timeout=300) == 0
    run = tmp_path / "vision" / "r"
    resumed = killed_then_resumed(run, "vision", "train", "--runs-dir", tmp_path, "--name", "r", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert same_weights(run / "model.keras", tmp_path / "vision" / "straight" / "model.keras")
