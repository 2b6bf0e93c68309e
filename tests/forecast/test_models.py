"""Every registered forecast model, the scaling round trip (eager and in tf.data), baselines and metrics."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.forecast import backtest, scaling
from pipelines.forecast.models import MODELS, ForecastModelConfig, Layout, PinballLoss


@pytest.mark.parametrize("covariates", [(0, 0), (2, 1)], ids=["values", "covariates"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_forecasts_each_step_and_quantile_and_trains_on_the_pinball_loss(name, covariates, tmp_path):
    import keras

    config = ForecastModelConfig(name=name, width=8, depth=2, heads=2)
    layout = Layout(12, 4, *covariates)
    model = MODELS.get(name)(config, layout)
    model.compile(optimizer="adam", loss=PinballLoss(config.quantiles))
    rng = np.random.default_rng(0)
    x = {"values": rng.normal(size=(8, 12)).astype("float32")}
    if layout.known:
        x["known"] = rng.normal(size=(8, 16, layout.known)).astype("float32")
    if layout.past:
        x["past"] = rng.normal(size=(8, 12, layout.past)).astype("float32")
    model.fit(x, np.zeros((8, 4), "float32"), epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (8, 4, 3)
    if layout.known:  # the known values of the steps to forecast reach the forecast
        changed = {**x, "known": x["known"].copy()}
        changed["known"][:, -1] += 10
        assert not np.allclose(model.predict(changed, verbose=0), model.predict(x, verbose=0))
    model.save(tmp_path / "m.keras")  # registered layers and loss only: loads in safe mode
    keras.models.load_model(tmp_path / "m.keras")


def test_the_pinball_loss_is_the_mean_quantile_loss():
    loss = PinballLoss([0.1, 0.9])
    # target 1, both quantiles at 0: errors +1 -> 0.1 and 0.9, mean 0.5
    assert float(loss(np.ones((1, 1)), np.zeros((1, 1, 2)))) == pytest.approx(0.5)


@pytest.mark.parametrize("transform", scaling.TRANSFORMS)
def test_targets_in_model_space_come_back_in_the_original_units(transform):
    rng = np.random.default_rng(0)
    series = np.exp(np.cumsum(rng.normal(0, 0.1, 40))) * 100
    shift, scale = scaling.fit_scaling(series[:30], transform)
    context, future = series[None, 20:30].astype("float32"), series[None, 30:34].astype("float32")
    s, c = tf.constant([shift], tf.float32), tf.constant([scale], tf.float32)

    def round_trip(values, ahead):
        target = scaling.model_targets(values, ahead, s, c, transform)
        return scaling.original_units(target[..., None], values, s, c, transform)[..., 0]

    eager = round_trip(tf.constant(context), tf.constant(future)).numpy()
    in_data = next(iter(tf.data.Dataset.from_tensors((context, future)).map(round_trip))).numpy()
    np.testing.assert_allclose(eager, future, rtol=1e-4)
    np.testing.assert_array_equal(eager, in_data)
    assert scaling.model_inputs(tf.constant(context), s, c, transform).shape == (1, 10)


def test_baselines_repeat_the_last_value_the_last_season_and_extend_the_drift():
    y = np.array([0.0, 1, 2, 3, 4, 5, 6, 7])
    found = backtest.baseline_forecasts(y, np.array([5]), horizon=4, season=3)
    assert found["naive"].tolist() == [[5, 5, 5, 5]]
    assert found["seasonal_naive"].tolist() == [[3, 4, 5, 3]]
    assert found["drift"].tolist() == [[6, 7, 8, 9]]


def test_metrics_against_hand_computed_values():
    actual, forecast = np.array([[1.0, 2.0]]), np.array([[2.0, 2.0]])
    m = backtest.point_metrics(actual, forecast, scale=np.array([0.5]))
    assert (m["mae"], m["rmse"], m["mase"]) == (0.5, pytest.approx(np.sqrt(0.5)), 1.0)
    assert m["smape"] == pytest.approx(100 * (2 / 3) / 2) and m["per_step"]["mae"] == [1.0, 0.0]
    q = np.array([[[0.0, 1.0, 3.0], [2.5, 3.0, 4.0]]])
    interval = backtest.interval_metrics(actual, q, [0.1, 0.5, 0.9])["interval"]
    assert interval["coverage"] == 0.5 and interval["coverage_per_step"] == [1.0, 0.0]
    assert backtest.mase_scale(np.array([1.0, 2, 4, 7]), season=1) == 2.0
    assert backtest.directional_accuracy(np.array([[2.0, 0.0]]), np.array([[3.0, 3.0]]), np.array([1.0])) == 0.5
    assert backtest.origins(start=10, stop=20, horizon=3, stride=2, context=4).tolist() == [9, 11, 13, 15]
