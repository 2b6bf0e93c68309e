"""The resume state survives a kill at any byte of its write: whatever a kill leaves, --resume finds the last
complete epoch (pipelines/core/callbacks.py: ResumeState)."""

import shutil

import keras
import numpy as np

from pipelines.core.callbacks import ResumeState


def small_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def train_with_state(folder, epochs: int, model=None) -> keras.callbacks.History:
    model = model or small_model()
    x, y = np.random.default_rng(0).normal(size=(32, 4)), np.zeros((32, 1))
    state = ResumeState(folder)
    state.on_train_end = lambda logs=None: None  # keep the files, as a killed run does
    return model.fit(x, y, epochs=epochs, batch_size=8, callbacks=[state], verbose=0)


def test_a_kill_at_any_byte_of_the_write_leaves_the_last_complete_epoch(tmp_path):
    """A kill while epoch 3 is written leaves epoch-0003.partial at some length beside complete epoch 2: at every
    one of 40 lengths from 0 bytes to the whole file, the state resumes from epoch 2 with epoch 2's weights."""
    train_with_state(tmp_path / "full", epochs=3)
    files = dict(ResumeState(tmp_path / "full").saved())
    assert sorted(files) == [2, 3]  # the newest two are kept
    written = files[3].read_bytes()
    reference = small_model()
    reference.load_weights(files[2])
    points = sorted({1, *np.linspace(0, len(written), 39, dtype=int).tolist()})  # 0 bytes .. the whole file
    for point in points:
        folder = tmp_path / f"killed-{point}"
        folder.mkdir()
        shutil.copy(files[2], folder / files[2].name)
        (folder / "epoch-0003.partial.keras").write_bytes(written[:point])
        model = small_model()
        state = ResumeState(folder)
        state.set_model(model)
        state.on_train_begin()
        assert model._initial_epoch == 2, point
        for got, want in zip(model.get_weights(), reference.get_weights()):
            np.testing.assert_array_equal(got, want)
    assert len(points) == 40


def test_a_damaged_newest_state_falls_back_to_the_one_before(tmp_path):
    train_with_state(tmp_path, epochs=2)
    (tmp_path / "epoch-0002.keras").write_bytes(b"PK\x03\x04 damaged by the disk")
    model = small_model()
    state = ResumeState(tmp_path)
    state.set_model(model)
    state.on_train_begin()
    assert model._initial_epoch == 1


def test_training_goes_on_after_the_restored_epoch(tmp_path):
    train_with_state(tmp_path, epochs=2)
    model = small_model()
    history = train_with_state(tmp_path, epochs=4, model=model)
    assert history.epoch == [2, 3]  # epochs 3 and 4 only
    assert int(model.optimizer.iterations.numpy()) == 4 * 4  # 4 batches an epoch, none repeated or lost


def test_a_state_written_by_an_older_dlapps_still_resumes(tmp_path):
    """Before 2026-12 the resume state was epoch-NNNN.weights.h5: an interrupted run of then resumes now."""
    trained = small_model()
    trained.fit(np.zeros((8, 4)), np.zeros((8, 1)), epochs=1, verbose=0)
    trained.save_weights(tmp_path / "epoch-0005.weights.h5")
    model = small_model()
    state = ResumeState(tmp_path)
    state.set_model(model)
    state.on_train_begin()
    assert model._initial_epoch == 5
    assert int(model.optimizer.iterations.numpy()) == 1
