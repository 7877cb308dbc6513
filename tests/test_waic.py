"""WAIC against ArviZ (the reference implementation) and against hand-computable cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from bayes_gmm.inference._waic import WAICResult, waic

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its refactor on import
    import arviz as az

RTOL = 1e-8


def _arviz_waic(log_lik_3d: np.ndarray):
    """``arviz.waic`` on a (chain, draw, obs) log-likelihood array, ArviZ's own warning silenced."""
    n_chains, n_draws = log_lik_3d.shape[:2]
    idata = az.from_dict(
        posterior={"mu": np.zeros((n_chains, n_draws))},
        log_likelihood={"y": log_lik_3d},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.waic(idata, pointwise=True, scale="log")


def _assert_matches_arviz(ours: WAICResult, ref) -> None:
    np.testing.assert_allclose(ours.elpd, ref["elpd_waic"], rtol=RTOL)
    np.testing.assert_allclose(ours.se, ref["se"], rtol=RTOL)
    np.testing.assert_allclose(ours.p_waic, ref["p_waic"], rtol=RTOL)
    np.testing.assert_allclose(ours.pointwise, np.asarray(ref["waic_i"]), rtol=RTOL)
    assert ours.warning == bool(ref["warning"])
    assert ours.n_samples == ref["n_samples"]
    assert ours.n_observations == ref["n_data_points"]


def _gaussian_model_log_lik(rng: np.random.Generator, n_chains: int, n_draws: int) -> np.ndarray:
    """Pointwise log-likelihood of a normal model with unknown mean and scale, from its exact posterior."""
    y = rng.normal(1.5, 2.0, size=60)
    y[:3] += 9.0  # a few outliers give large pointwise variances (and the ArviZ warning)
    n = y.size
    # Posterior under the reference prior: sigma^2 ~ Inv-chi2(n - 1, s^2); mu | sigma ~ N(ybar, sigma^2 / n).
    s2 = y.var(ddof=1)
    sigma2 = (n - 1) * s2 / rng.chisquare(n - 1, size=(n_chains, n_draws))
    mu = rng.normal(y.mean(), np.sqrt(sigma2 / n))
    return stats.norm.logpdf(y, loc=mu[..., None], scale=np.sqrt(sigma2)[..., None])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_arviz_on_random_log_lik_3d(seed):
    rng = np.random.default_rng(seed)
    log_lik = rng.normal(-1.0, 0.5, size=(3, 200, 25)) + rng.normal(0, 2, size=25)
    _assert_matches_arviz(waic(log_lik), _arviz_waic(log_lik))


def test_matches_arviz_on_random_log_lik_2d():
    rng = np.random.default_rng(3)
    log_lik = rng.normal(-2.0, 0.3, size=(400, 40))
    result = waic(log_lik)
    _assert_matches_arviz(result, _arviz_waic(log_lik[None]))
    assert result.n_samples == 400
    assert result.n_observations == 40


def test_matches_arviz_on_gaussian_model_and_flags_large_variance():
    rng = np.random.default_rng(4)
    log_lik = _gaussian_model_log_lik(rng, n_chains=4, n_draws=250)
    result = waic(log_lik)
    _assert_matches_arviz(result, _arviz_waic(log_lik))
    assert result.warning  # the outliers have posterior var(log-lik) > 0.4
    # Sanity: the effective number of parameters of a 2-parameter model is of order 2 (plus the outliers).
    assert 1.0 < result.p_waic < 20.0


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


def test_hand_computed_values():
    # Two samples per observation: lppd_i = log(mean(exp)), p_waic_i = ((a - b) / 2) ** 2 (ddof=0).
    a = np.array([-1.0, -2.0, -0.5])
    b = np.array([-1.5, -2.0, -1.5])
    result = waic(np.stack([a, b]))
    lppd = np.log((np.exp(a) + np.exp(b)) / 2)
    p_i = ((a - b) / 2) ** 2
    expected = lppd - p_i
    np.testing.assert_allclose(result.pointwise, expected, rtol=1e-13)
    np.testing.assert_allclose(result.p_waic, p_i.sum(), rtol=1e-13)
    np.testing.assert_allclose(result.se, np.sqrt(3 * np.var(expected)), rtol=1e-13)
    assert result.warning is False  # largest p_i is 0.25


def test_constant_log_lik_has_no_penalty():
    log_lik = np.tile(np.array([-0.3, -1.2, -4.0]), (50, 1))
    result = waic(log_lik)
    assert result.p_waic == pytest.approx(0.0, abs=1e-14)
    assert result.elpd == pytest.approx(-5.5, rel=1e-12)


def test_large_log_lik_magnitudes_stay_finite():
    # exp(-2000) underflows; logsumexp must not.
    rng = np.random.default_rng(6)
    log_lik = -2000.0 + rng.normal(0, 0.1, size=(100, 5))
    result = waic(log_lik)
    assert np.isfinite(result.elpd)
    _assert_matches_arviz(result, _arviz_waic(log_lik[None]))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "finite values.*1 NaN"),
        (np.array([[0.0, -np.inf], [1.0, 2.0]]), "finite values.*1 infinite"),
        (np.zeros(10), "3-D .* or 2-D .* got an array with 1 dimension"),
        (np.zeros((2, 2, 2, 2)), "got an array with 4 dimension"),
        (np.zeros((1, 5)), "at least 2 posterior samples"),
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
