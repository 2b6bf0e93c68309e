"""Reading series from tables: the stated rules for order, duplicates, frequency, gaps and bad values."""

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import UserError
from pipelines.forecast.pipeline import ForecastDataConfig
from pipelines.forecast.series import Frequency, series_from_frame


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame({k: [str(v) for v in vs] for k, vs in columns.items()})


def read(f: pd.DataFrame, **settings):
    return series_from_frame(f, ForecastDataConfig(**settings), "t.csv")


def test_rows_are_sorted_by_time_and_the_columns_found_by_name():
    found = read(frame(date=["2024-01-03", "2024-01-01", "2024-01-02"], volume=[1, 2, 3], y=[3.0, 1.0, 2.0]))
    (s,) = found.series
    assert found.target == "y" and found.time_column == "date" and found.frequency == Frequency("seconds", 86400)
    assert s.values.tolist() == [1.0, 2.0, 3.0] and s.lines.tolist() == [3, 4, 2]


def test_gaps_and_empty_values_are_interpolated_in_time_and_counted():
    steps = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]  # no row for step 3, no value at step 2
    found = read(frame(t=steps, value=[0.0, 1.0, "", *map(float, steps[3:])]))
    (s,) = found.series
    assert s.values.tolist() == [float(t) for t in range(11)] and s.filled == 2
    assert s.times.tolist() == list(range(11))


def test_fill_error_refuses_the_first_missing_value_by_line():
    with pytest.raises(UserError, match=r"line 4: no target value.*data.fill=interpolate"):
        read(frame(t=[0, 1, 2, 3], value=[0.0, 1.0, "", 4.0]), fill="error")
    with pytest.raises(UserError, match=r"no row for the step after 1 \(between lines 3 and 4\)"):
        read(frame(t=[0, 1, 3, 4], value=[0.0, 1.0, 3.0, 4.0]), fill="error")


def test_covariates_are_filled_like_the_target_and_rows_after_the_last_value_are_the_future():
    table = frame(
        t=[0, 1, 2, 3, 4, 6, 5],  # unsorted; steps 5 and 6 have no target value: the future
        y=[1.0, 2.0, 3.0, 4.0, 5.0, "", ""],
        promo=[0, 1, "", 1, 0, 1, 0],
        volume=[7, 8, 9, 10, 11, "", ""],
    )
    found = read(table, known=["promo"], past=["volume"])
    (s,) = found.series
    assert found.covariates == ("promo", "volume") and s.values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert s.covariates.tolist() == [[0, 7], [1, 8], [1, 9], [1, 10], [0, 11]]  # promo at step 2 interpolated
    assert s.future[:, 0].tolist() == [0, 1]  # steps 5 and 6, in time order
    with pytest.raises(UserError, match=r"line 4: no value for covariate 'promo'"):
        read(table, known=["promo"], fill="error")


def test_weekday_dates_are_business_days_and_holidays_are_gaps():
    days = pd.bdate_range("2024-01-01", periods=30).delete(10)  # one holiday
    found = read(frame(Date=days.strftime("%Y-%m-%d"), Open=range(29), Close=np.arange(29) + 0.5))
    assert found.frequency == Frequency("business_days", 1) and found.target == "Close"
    assert len(found.series[0].values) == 30 and found.frequency.season() == 5
    after = found.frequency.after(found.series[0].times[-1], 2)
    assert [str(t)[:10] for t in after] == ["2024-02-12", "2024-02-13"]  # Friday 2024-02-09 -> Monday, Tuesday


def test_month_starts_are_months_and_half_hours_have_a_daily_season():
    months = read(frame(ds=pd.date_range("2020-01-01", periods=24, freq="MS").strftime("%Y-%m-%d"), y=range(24)))
    assert months.frequency == Frequency("months", 1) and months.frequency.season() == 12
    halves = pd.date_range("2000-06-05", periods=100, freq="30min").strftime("%Y-%m-%d %H:%M:%S")
    found = read(frame(timestamp=halves, demand_mw=np.arange(100) % 7))
    assert found.frequency.describe() == "30 minutes" and found.frequency.season() == 48


def test_long_format_makes_one_series_per_id():
    found = read(frame(unique_id=["b", "a", "a", "b", "a"], ds=[1, 1, 2, 2, 3], y=[10, 1, 2, 20, 3]))
    assert [(s.name, s.values.tolist()) for s in found.series] == [("a", [1, 2, 3]), ("b", [10, 20])]


@pytest.mark.parametrize(
    "columns, settings, message",
    [
        ({"t": [0, 1, 1], "y": [1, 2, 3]}, {}, r"lines 3 and 4: both at time 1; keep one row per time"),
        ({"t": [0, 1, 2], "y": [1, "abc", 3]}, {}, r"line 3: target 'y' is 'abc', not a number"),
        ({"t": [0, 1, 2], "y": [1, "inf", 3]}, {}, r"line 3: target 'y' is infinite"),
        ({"t": [0, 1, 2], "y": [4, 4, 4]}, {}, r"the target is constant \(4 at every step\)"),
        (
            {"t": [0, 10, 11, 30, 31], "y": [1, 2, 3, 4, 5]},
            {},
            r"fit no regular frequency.*27 of 32 steps without a row",
        ),
        ({"t": ["2024-01-01", "soon"], "y": [1, 2]}, {}, r"line 3, column 't': 'soon' is not a date"),
        ({"t": [0, 1], "y": [1, 2]}, {"target": "Close"}, r"no target column 'Close'; the columns are: t, y"),
        ({"t": [0, 1], "a": [1, 2], "b": [1, 2]}, {}, r"which column is the target\? numeric columns: a, b"),
    ],
)
def test_bad_tables_are_refused_naming_the_place(columns, settings, message):
    with pytest.raises(UserError, match=message):
        read(frame(**columns), **settings)
