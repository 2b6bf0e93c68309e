"""Every registered forecast model, the scaling round trip (eager and in tf.data), baselines and metrics."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.layers import Whitening
from pipelines.forecast import backtest, scaling
from pipelines.forecast.models import MODELS, ForecastModelConfig, Layout, PinballLoss, combined, lookbacks


@pytest.mark.parametrize("members", [1, 2])
@pytest.mark.parametrize("covariates", [(0, 0), (2, 1)], ids=["values", "covariates"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_forecasts_each_step_and_quantile_and_trains_on_the_pinball_loss(
    name, covariates, members, tmp_path
):
    import keras

    config = ForecastModelConfig(name=name, width=8, depth=2, heads=2, members=members)
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
    assert model.predict(x, verbose=0).shape == ((8, 4, 3) if members == 1 else (8, members, 4, 3))
    if layout.known:  # the known values of the steps to forecast reach the forecast
        changed = {**x, "known": x["known"].copy()}
        changed["known"][:, -1] += 10
        assert not np.allclose(model.predict(changed, verbose=0), model.predict(x, verbose=0))
    model.save(tmp_path / "m.keras")  # registered layers and loss only: loads in safe mode
    keras.models.load_model(tmp_path / "m.keras")


def test_members_read_the_last_part_of_the_context_and_learn_from_their_own_error():
    assert lookbacks(672, 2) == [336, 672] and lookbacks(5, 3) == [2, 4, 5] and lookbacks(12, 1) == [12]
    model = MODELS.get("linear")(ForecastModelConfig(members=2), Layout(12, 4, known=1))
    rng = np.random.default_rng(0)
    x = {"values": rng.normal(size=(3, 12)).astype("float32"), "known": rng.normal(size=(3, 16, 1)).astype("float32")}
    early = {**x, "values": x["values"].copy(), "known": x["known"].copy()}
    early["values"][:, :6] += 5
    early["known"][:, :6] += 5
    before, after = model.predict(x, verbose=0), model.predict(early, verbose=0)
    np.testing.assert_array_equal(before[:, 0], after[:, 0])  # the first member reads the last 6 steps only
    assert not np.allclose(before[:, 1], after[:, 1])
    np.testing.assert_allclose(combined(before).numpy(), before.mean(axis=1), rtol=1e-6)
    # the loss of all members is the mean of each member's own loss, not the loss of their mean forecast
    loss, target = PinballLoss([0.1, 0.5, 0.9]), rng.normal(size=(3, 4)).astype("float32")
    each = [float(loss(target, before[:, k])) for k in range(2)]
    assert float(loss(target, before)) == pytest.approx(np.mean(each), rel=1e-5)


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


def test_whitening_decorrelates_correlated_inputs_and_is_saved_with_the_model(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(2000, 16)), axis=1).astype("float32")  # neighbours correlate near 1
    layer = Whitening()
    layer.adapt(walk)
    white = layer(walk).numpy()
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-3)
    assert np.corrcoef(walk, rowvar=False)[0, 1] > 0.6
    # unit variance, no correlation; up to the shrinkage that keeps the smallest directions from blowing up
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(16), atol=0.05)
    inputs = keras.Input((16,))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "w.keras")
    loaded = keras.models.load_model(tmp_path / "w.keras")
    np.testing.assert_allclose(loaded.predict(walk[:4], verbose=0), white[:4], rtol=1e-5, atol=1e-5)
    assert not loaded.layers[-1].trainable_weights


def test_whitening_leaves_the_identity_where_there_is_nothing_to_learn_from():
    for data in (np.ones((1, 3)), np.full((5, 3), 2.0)):
        layer = Whitening()
        layer.adapt(data)
        np.testing.assert_array_equal(layer(np.array([[1.0, 2.0, 3.0]], "float32")).numpy(), [[1.0, 2.0, 3.0]])


def test_the_linear_default_reaches_the_least_squares_fit_of_a_correlated_autoregression():
    """On a smooth series (strongly correlated context), Adam on whitened inputs gets close to least squares in
    20 epochs, where raw inputs leave it well off: the reason the layer exists."""
    import keras

    rng = np.random.default_rng(0)
    series = np.sin(np.arange(3000) / 10) + np.cumsum(rng.normal(0, 0.05, 3000))
    series = (series - series.mean()) / series.std()  # model space, as the pipeline's scaling gives it
    context, horizon = 32, 4
    ends = np.arange(context - 1, len(series) - horizon)
    x = series[ends[:, None] + np.arange(-context + 1, 1)].astype("float32")
    y = series[ends[:, None] + np.arange(1, horizon + 1)].astype("float32")
    design = np.c_[x, np.ones(len(x))]
    least_squares = np.mean((design @ np.linalg.lstsq(design, y, rcond=None)[0] - y) ** 2)

    def adam_error(whiten: bool) -> float:
        keras.utils.set_random_seed(0)
        model = MODELS.get("linear")(ForecastModelConfig(quantiles=[0.5], members=1), Layout(context, horizon))
        if whiten:
            next(layer for layer in model.layers if isinstance(layer, Whitening)).adapt(x)
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
        model.fit({"values": x}, y[..., None], epochs=20, batch_size=64, verbose=0)
        return float(np.mean((model.predict({"values": x}, verbose=0)[..., 0] - y) ** 2))

    assert adam_error(whiten=True) < 1.2 * least_squares  # 1.04x here
    assert adam_error(whiten=False) > 2 * least_squares  # 2.6x here


def test_a_context_too_long_to_whiten_goes_in_as_it_is():
    from pipelines.forecast.models import WHITEN_AT_MOST

    def whitened(context: int) -> bool:
        model = MODELS.get("linear")(ForecastModelConfig(members=1), Layout(context, 2))
        return any(isinstance(layer, Whitening) for layer in model.layers)

    assert whitened(WHITEN_AT_MOST)
    assert not whitened(WHITEN_AT_MOST + 1)
