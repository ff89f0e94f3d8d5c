"""The hard test series against ../shared/redset.md's statistics, the served model against the four
simple baselines on them, and the leak test: the window being scored never picks the model."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_assets.insights import baselines, hard_series, robust
from pipeline_assets.insights import forecast as fc
from pipeline_assets.source import shapes

COUNT = 80  # series per kind: medians steady to ~0.01
DECOMPOSED = {"provisioned": 24, "serverless": 60}  # half the serverless ones are flat (no MASE), and cheap


@pytest.fixture(scope="module")
def measured():
    return {kind: [shapes.series_shapes(0, y) for y in hard_series.series(kind, COUNT, seed=0)] for kind in hard_series.KINDS}


def quartiles(rows, measure):
    values = [r[measure] for r in rows if np.isfinite(r[measure])]
    return np.quantile(values, [0.25, 0.5, 0.75])


@pytest.mark.parametrize(
    "kind, acf168, cv",
    # redset.md: lag-168 autocorrelation median 0.41 / 0.13; CV median [IQR] 0.71 [0.02, 1.70] / 0.0 [0.0, 1.43].
    [("provisioned", (0.3, 0.5), ((0.0, 0.05), (0.5, 1.1), (1.0, 1.8))), ("serverless", (0.08, 0.2), ((0.0, 0.0), (0.0, 0.05), (1.0, 1.8)))],
)
def test_hard_series_have_redsets_autocorrelation_and_cvs(measured, kind, acf168, cv):
    rows = measured[kind]
    assert acf168[0] < quartiles(rows, "acf168")[1] < acf168[1]
    for (low, high), value in zip(cv, quartiles(rows, "cv")):
        assert low <= value <= high
    weekend = np.median([r["weekend_ratio"] for r in rows if np.isfinite(r["weekend_ratio"])])
    assert 0.95 < weekend < 1.1  # no weekend dip (redset.md: 1.05 / 1.02)


def test_about_a_third_shift_level_and_a_third_have_an_outlier_week():
    rng = np.random.default_rng(3)
    base = hard_series.one_series(rng, "provisioned", flat=False)
    # Flags are dealt per series: a third each, whatever the seed.
    count, flagged = 60, round(60 / 3)
    rng = np.random.default_rng([0, 0])
    rng.permutation(count)  # the flat draw
    shift, outlier = (rng.permutation(count) < flagged for _ in range(2))
    assert shift.sum() == outlier.sum() == 20 and base.min() >= 0
    # A shifted series: a week's median level is x2 or x0.5 of the week before, somewhere.
    y = hard_series.one_series(np.random.default_rng(5), "provisioned", shift=True)
    weekly = np.median(y.reshape(-1, 168), axis=1)
    ratios = weekly[1:] / weekly[:-1]
    assert (ratios > 1.6).any() or (ratios < 0.6).any()


def test_hard_series_have_bursts_of_a_few_hours():
    y = hard_series.one_series(np.random.default_rng(1), "provisioned")
    typical = np.median(y.reshape(-1, 168), axis=0)[np.arange(len(y)) % 168]
    burst = y > 2.5 * typical + 10
    assert 5 <= burst.sum() <= 0.05 * len(y)


@pytest.fixture(scope="module")
def summaries():
    models = {**baselines.BASELINES, fc.DEFAULT_MODEL: fc.MODELS[fc.DEFAULT_MODEL]}
    return {
        kind: fc.summary(fc.backtest(hard_series.frame(kind, COUNT, seed=0), models)).set_index("model")["mase"]
        for kind in hard_series.KINDS
    }


@pytest.mark.parametrize("kind", hard_series.KINDS)
def test_the_series_are_hard_like_real_ones(summaries, kind):
    """Real Redset's sign: the 4-week median beats the 4-week mean, and decompose_ses (statsmodels,
    ~0.4 s a series: fitted on fewer series) does not beat the median."""
    mase = summaries[kind]
    assert mase["median_4w"] < mase["mean_4w"]
    some = hard_series.frame(kind, DECOMPOSED[kind], seed=0)
    small = fc.summary(fc.backtest(some, {"median_4w": baselines.median_4w, "decompose_ses": fc.decompose_ses})).set_index("model")["mase"]
    assert small["decompose_ses"] >= small["median_4w"]


@pytest.mark.parametrize("kind", hard_series.KINDS)
def test_the_served_model_beats_every_simple_baseline_by_five_percent(summaries, kind):
    mase = summaries[kind]
    best = mase[list(baselines.BASELINES)].min()
    assert mase[fc.DEFAULT_MODEL] <= 0.95 * best, mase.round(3).to_dict()


def test_default_model_is_served_everywhere():
    import yaml

    from pipeline_assets import settings

    project = yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"]["anomalies"]["load_surge_model"] == fc.DEFAULT_MODEL
    view = Path(fc.__file__).parents[1] / "serving/dashboard/views/insights_forecast.py"
    assert f'DEFAULT_MODEL = "{fc.DEFAULT_MODEL}"' in view.read_text() and f'BASELINE = "{fc.BASELINE}"' in view.read_text()
    assert fc.DEFAULT_MODEL in fc.MODELS and set(baselines.BASELINES) <= set(fc.MODELS)


def test_the_scored_window_never_picks_the_model():
    """A candidate that is perfect exactly on the window being scored (and off by 5 SDs everywhere
    else) must never be chosen: robust_select with it scores the same as without it. A selector
    that peeked at the scored window would choose it (checked on a deliberately leaky one)."""
    y = hard_series.series("provisioned", 4, seed=2)[1]
    scoring, off = {}, 5 * y.std()

    def oracle(history, h):
        n = len(history)
        truth = y[n : n + h]
        return truth if n == scoring["origin"] else truth + off

    def with_oracle(history, h, level):
        scoring["origin"] = len(history)
        return robust.robust_select(history, h, level, candidates={**robust.CANDIDATES, "oracle": oracle})

    def leaky(history, h, level):  # picks by the error on the scored window itself
        scoring["origin"] = len(history)
        n = len(history)
        cands = {**robust.CANDIDATES, "oracle": oracle}
        name = min(cands, key=lambda c: np.abs(y[n : n + h] - cands[c](history, h)).mean())
        return baselines.Forecast(*(cands[name](history, h),) * 3)

    [clean] = fc.backtest_series(y, {"robust_select": robust.robust_select})
    [trapped] = fc.backtest_series(y, {"with_oracle": with_oracle})
    [peeking] = fc.backtest_series(y, {"leaky": leaky})
    assert peeking["mase"] == pytest.approx(0.0)  # the trap works on a selector that peeks
    assert trapped["mase"] == pytest.approx(clean["mase"]) and clean["mase"] > 0.3


def test_choice_uses_only_the_history():
    """Changing the hours after the origin changes neither the choice nor the forecast."""
    y = hard_series.series("serverless", 6, seed=4)[5]
    origin = len(y) - 48
    future = y.copy()
    future[origin:] *= 10
    assert robust.chosen(y[:origin]) == robust.chosen(future[:origin]) is not None
    a, b = robust.robust_select(y[:origin], 24), robust.robust_select(future[:origin], 24)
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.upper, b.upper)


def test_robust_seasonal_by_hand():
    """Two flat weeks at 10 then two at 20 with one burst hour: the 10-week median of each hour is
    the middle of 10,10,20,20 = 15; the normalized shape is 1 everywhere (the burst trimmed away),
    times the last two weeks' level 20; the forecast is their mean, 17.5, the burst ignored."""
    y = np.concatenate([np.full(336, 10.0), np.full(336, 20.0)])
    y[-100] = 500.0
    forecast = robust.robust_seasonal_mean(y, 168)
    assert forecast == pytest.approx(np.full(168, 17.5))
    assert baselines.mean_4w(y, 168).mean[68] == pytest.approx((10 + 10 + 20 + 500) / 4)  # the mean is pulled


def test_execution_hours_smape_no_worse_than_the_baseline():
    """Sparse series (mostly empty hours, like execution hours of a small instance): the served
    model must not fill empty hours with a smoothed value."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        busy = rng.random(168) < 0.3
        y = np.where(busy[np.arange(10 * 168) % 168] & (rng.random(10 * 168) < 0.8), rng.gamma(2, 0.5, 10 * 168), 0.0)
        rows.append(pd.DataFrame({"series_id": i, "hour": pd.date_range("2024-03-01", periods=len(y), freq="h"), "value": y}))
    table = fc.summary(fc.backtest(pd.concat(rows), {"seasonal_naive": fc.seasonal_naive, "served": fc.MODELS[fc.DEFAULT_MODEL]}))
    smape = table.set_index("model")["smape"]
    assert smape["served"] <= smape["seasonal_naive"]
