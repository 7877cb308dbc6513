"""WAIC against stored ArviZ reference values, a textbook computation and hand-computable cases.

ArviZ 1 no longer has ``arviz.waic``. The reference values in ``tests/data/waic_reference.npz`` were produced
by the old implementation, ``arviz.waic(idata, pointwise=True, scale="log")`` of ArviZ 0.23.4, with
``tests/data/make_waic_reference.py`` (run once by hand with ``arviz<0.24``; see its docstring). The file
stores each input log-likelihood array with ArviZ's outputs, so these tests depend neither on ArviZ nor on
random-number streams. Independently of ArviZ and of our implementation, `_textbook_waic` recomputes WAIC
from its definitions (Vehtari, Gelman & Gabry 2017) with a plain per-observation loop.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest

from bayes_gmm.inference._waic import WAICResult, waic

RTOL = 1e-8
REFERENCE_FILE = Path(__file__).parent / "data" / "waic_reference.npz"
CASES = ["random_3d", "random_2d", "gaussian_model", "large_magnitude"]


@functools.cache
def _reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE_FILE) as data:
        return {name: data[name] for name in data.files}


def _log_lik(case: str) -> np.ndarray:
    return _reference()[f"{case}__log_lik"]


def _assert_matches_reference(ours: WAICResult, case: str) -> None:
    """Compare `ours` with the stored ``arviz.waic`` outputs of `case`."""
    ref = _reference()
    np.testing.assert_allclose(ours.elpd, ref[f"{case}__elpd_waic"], rtol=RTOL)
    np.testing.assert_allclose(ours.se, ref[f"{case}__se"], rtol=RTOL)
    np.testing.assert_allclose(ours.p_waic, ref[f"{case}__p_waic"], rtol=RTOL)
    np.testing.assert_allclose(ours.pointwise, ref[f"{case}__waic_i"], rtol=RTOL)
    assert ours.warning == bool(ref[f"{case}__warning"])
    assert ours.n_samples == int(ref[f"{case}__n_samples"])
    assert ours.n_observations == int(ref[f"{case}__n_data_points"])


def _textbook_waic(log_lik: np.ndarray) -> dict:
    """WAIC by its definitions, one observation at a time, without ``logsumexp`` or vectorised variance.

    Per observation i with draws l_1..l_S: lppd_i = log((1/S) sum_s exp(l_s)), computed as
    m + log(sum_s exp(l_s - m) / S) with m = max_s l_s; p_i = (1/S) sum_s (l_s - mean)^2;
    elpd_i = lppd_i - p_i. Then elpd = sum_i elpd_i, p_waic = sum_i p_i, se = sqrt(n var(elpd_i)) (ddof=0).
    """
    arr = np.asarray(log_lik, dtype=np.float64)
    arr = arr.reshape(-1, arr.shape[-1])  # pool chains and draws
    n_samples, n_obs = arr.shape
    elpd_i = np.empty(n_obs)
    p_i = np.empty(n_obs)
    for i in range(n_obs):
        column = [float(v) for v in arr[:, i]]
        m = max(column)
        lppd = m + math.log(math.fsum(math.exp(v - m) for v in column) / n_samples)
        mean = math.fsum(column) / n_samples
        p_i[i] = math.fsum((v - mean) ** 2 for v in column) / n_samples
        elpd_i[i] = lppd - p_i[i]
    elpd = math.fsum(elpd_i)
    mean_elpd = elpd / n_obs
    var_elpd = math.fsum((e - mean_elpd) ** 2 for e in elpd_i) / n_obs
    return {
        "elpd": elpd,
        "se": math.sqrt(n_obs * var_elpd),
        "p_waic": math.fsum(p_i),
        "pointwise": elpd_i,
        "p_i": p_i,
        "warning": bool(np.any(p_i > 0.4)),
        "n_samples": n_samples,
        "n_observations": n_obs,
    }


def _assert_matches_textbook(ours: WAICResult, log_lik: np.ndarray) -> None:
    ref = _textbook_waic(log_lik)
    np.testing.assert_allclose(ours.elpd, ref["elpd"], rtol=RTOL)
    np.testing.assert_allclose(ours.se, ref["se"], rtol=RTOL)
    np.testing.assert_allclose(ours.p_waic, ref["p_waic"], rtol=RTOL)
    np.testing.assert_allclose(ours.pointwise, ref["pointwise"], rtol=RTOL)
    assert ours.warning == ref["warning"]
    assert ours.n_samples == ref["n_samples"]
    assert ours.n_observations == ref["n_observations"]


def test_reference_file_holds_the_expected_cases():
    ref = _reference()
    assert list(ref["cases"]) == CASES
    assert str(ref["arviz_version"]).startswith("0.")  # made with the old arviz.waic, before ArviZ 1
    assert REFERENCE_FILE.stat().st_size < 1_000_000
    for case in CASES:
        log_lik = _log_lik(case)
        assert log_lik.dtype == np.float64
        assert np.all(np.isfinite(log_lik))
        assert ref[f"{case}__waic_i"].shape == (log_lik.shape[-1],)


@pytest.mark.parametrize("case", CASES)
def test_matches_arviz_reference(case):
    _assert_matches_reference(waic(_log_lik(case)), case)


@pytest.mark.parametrize("case", CASES)
def test_matches_textbook_definition(case):
    log_lik = _log_lik(case)
    _assert_matches_textbook(waic(log_lik), log_lik)


@pytest.mark.parametrize("case", CASES)
def test_textbook_definition_matches_arviz_reference(case):
    # Checks the test's own reference: the two independent references agree with each other.
    ref = _reference()
    textbook = _textbook_waic(_log_lik(case))
    np.testing.assert_allclose(textbook["elpd"], ref[f"{case}__elpd_waic"], rtol=RTOL)
    np.testing.assert_allclose(textbook["se"], ref[f"{case}__se"], rtol=RTOL)
    np.testing.assert_allclose(textbook["p_waic"], ref[f"{case}__p_waic"], rtol=RTOL)
    np.testing.assert_allclose(textbook["pointwise"], ref[f"{case}__waic_i"], rtol=RTOL)
    assert textbook["warning"] == bool(ref[f"{case}__warning"])


def test_random_2d_counts_samples_and_observations():
    log_lik = _log_lik("random_2d")
    assert log_lik.shape == (200, 30)
    result = waic(log_lik)
    assert result.n_samples == 200
    assert result.n_observations == 30
    # As a single chain it is the same computation.
    _assert_matches_reference(waic(log_lik[None]), "random_2d")


def test_gaussian_model_flags_large_variance():
    result = waic(_log_lik("gaussian_model"))
    assert result.warning  # the outliers have posterior var(log-lik) > 0.4
    assert bool(_reference()["gaussian_model__warning"])  # as ArviZ flagged (and warned)
    # Sanity: the effective number of parameters of a 2-parameter model is of order 2 (plus the outliers).
    assert 1.0 < result.p_waic < 20.0


def test_large_log_lik_magnitudes_stay_finite():
    # exp(-2000) underflows; logsumexp must not.
    log_lik = _log_lik("large_magnitude")
    assert np.all(np.exp(log_lik) == 0.0)
    result = waic(log_lik)
    assert np.isfinite(result.elpd) and np.isfinite(result.se)
    assert np.all(np.isfinite(result.pointwise))
    _assert_matches_reference(result, "large_magnitude")
    _assert_matches_reference(waic(log_lik[0]), "large_magnitude")  # (sample, obs) gives the same


def test_both_shapes_agree_and_pointwise_sums_to_elpd():
    rng = np.random.default_rng(5)
    log_lik = rng.normal(-1.0, 0.2, size=(2, 150, 30))
    r3 = waic(log_lik)
    r2 = waic(log_lik.reshape(300, 30))
    assert r3.elpd == r2.elpd and r3.se == r2.se and r3.p_waic == r2.p_waic
    np.testing.assert_array_equal(r3.pointwise, r2.pointwise)
    np.testing.assert_allclose(r3.pointwise.sum(), r3.elpd, rtol=1e-12)
    assert not r3.warning  # var of log-lik is 0.04 everywhere
    assert not r3.pointwise.flags.writeable
    _assert_matches_textbook(r3, log_lik)


def test_hand_computed_values():
    # Two samples per observation: lppd_i = log(mean(exp)), p_waic_i = ((a - b) / 2) ** 2 (ddof=0).
    a = np.array([-1.0, -2.0, -0.5])
    b = np.array([-1.5, -2.0, -1.5])
    result = waic(np.stack([a, b]))
    lppd = np.log((np.exp(a) + np.exp(b)) / 2)
    p_i = ((a - b) / 2) ** 2
    expected = lppd - p_i
    np.testing.assert_allclose(result.pointwise, expected, rtol=1e-13)
    np.testing.assert_allclose(result.elpd, expected.sum(), rtol=1e-13)
    np.testing.assert_allclose(result.p_waic, p_i.sum(), rtol=1e-13)
    np.testing.assert_allclose(result.se, np.sqrt(3 * np.var(expected)), rtol=1e-13)
    assert result.warning is False  # largest p_i is 0.25
    assert (result.n_samples, result.n_observations) == (2, 3)


def test_hand_computed_variance_above_threshold_warns():
    # p_i = ((a - b) / 2) ** 2 = 0.5625 > 0.4 for the second observation only.
    result = waic(np.array([[0.0, -1.0], [0.0, -2.5]]))
    np.testing.assert_allclose(result.p_waic, 0.5625, rtol=1e-13)
    np.testing.assert_allclose(result.pointwise[0], 0.0, atol=1e-15)
    assert result.warning is True


def test_constant_log_lik_has_no_penalty():
    log_lik = np.tile(np.array([-0.3, -1.2, -4.0]), (50, 1))
    result = waic(log_lik)
    assert result.p_waic == pytest.approx(0.0, abs=1e-14)
    assert result.elpd == pytest.approx(-5.5, rel=1e-12)
    np.testing.assert_allclose(result.pointwise, [-0.3, -1.2, -4.0], rtol=1e-12)
    # se = sqrt(n * var(elpd_i)) with ddof=0.
    assert result.se == pytest.approx(np.sqrt(3 * np.var([-0.3, -1.2, -4.0])), rel=1e-12)
    assert result.warning is False


def test_constant_across_observations_has_zero_se():
    result = waic(np.full((3, 10, 4), -1.25))
    assert result.elpd == pytest.approx(-5.0, rel=1e-12)
    assert result.se == pytest.approx(0.0, abs=1e-12)
    assert result.p_waic == pytest.approx(0.0, abs=1e-14)
    assert (result.n_samples, result.n_observations) == (30, 4)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "finite values.*1 NaN"),
        (np.array([[0.0, -np.inf], [1.0, 2.0]]), "finite values.*1 infinite"),
        (np.zeros(10), "3-D .* or 2-D .* got an array with 1 dimension"),
        (np.zeros((2, 2, 2, 2)), "got an array with 4 dimension"),
        (np.zeros((1, 5)), "at least 2 posterior samples"),
        (np.zeros((1, 1, 5)), "at least 2 posterior samples"),
        (np.zeros((5, 0)), "at least 1 observation"),
        ([["a", "b"], ["c", "d"]], "cannot be converted to float"),
    ],
)
def test_invalid_input_raises(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        waic(bad)


def test_result_is_frozen():
    result = waic(np.zeros((3, 2)))
    with pytest.raises(AttributeError):
        result.elpd = 1.0
