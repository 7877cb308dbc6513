"""Slow statistical checks of the Bayesian fits against simulated truth, EM and published results.

Run with ``python -m pytest -m slow``. Fixed seeds; tolerances are stated at each assertion.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import fit_gmm
from bayes_gmm.models import OBSERVED

pytestmark = pytest.mark.slow

TRUE_WEIGHTS = np.array([0.45, 0.35, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
TRUE_COVS = {
    "full": np.array([[[1.0, 0.6], [0.6, 1.0]], [[0.8, -0.3], [-0.3, 0.5]], [[0.6, 0.2], [0.2, 1.2]]]),
    "tied": np.broadcast_to([[1.0, 0.4], [0.4, 0.7]], (3, 2, 2)),
    "diag": np.array([np.diag([1.0, 0.5]), np.diag([0.6, 1.3]), np.diag([0.8, 0.8])]),
    "spherical": np.array([np.eye(2) * 0.5, np.eye(2) * 1.2, np.eye(2) * 0.8]),
}


def simulate(covariance_type, n=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    chol = np.linalg.cholesky(TRUE_COVS[covariance_type])
    return TRUE_MEANS[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, 2)))


def _truth_order(means):
    # Posterior labels follow EM's: match them to the true components by position.
    from scipy.optimize import linear_sum_assignment

    cost = ((means[:, None, :] - TRUE_MEANS[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    order = np.empty(3, dtype=int)
    order[cols] = rows
    return order


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_nuts_recovers_simulated_truth_and_agrees_with_em(covariance_type):
    X = simulate(covariance_type)
    idata = fit_gmm(
        X, 3, covariance_type=covariance_type, backend="pymc", draws=500, tune=500, chains=2, random_seed=1
    )
    post = idata.posterior
    order = _truth_order(post["means"].mean(("chain", "draw")).to_numpy())
    draws = {
        "weights": post["weights"].to_numpy()[..., order].reshape(-1, 3),
        "means": post["means"].to_numpy()[..., order, :].reshape(-1, 6),
        "covariances": post["covariances"].to_numpy()[..., order, :, :].reshape(-1, 12),
    }
    truth = {
        "weights": TRUE_WEIGHTS,
        "means": TRUE_MEANS.ravel(),
        "covariances": TRUE_COVS[covariance_type].ravel(),
    }
    em = fit_em(X, 3, covariance_type=covariance_type, n_init=10, random_seed=0)
    em_order = _truth_order(em.means)
    em_values = {"weights": em.weights[em_order], "means": em.means[em_order].ravel()}
    for name, values in draws.items():
        mean, sd = values.mean(0), values.std(0)
        informative = sd > 1e-9  # structural zeros of diag/spherical covariances have no spread
        # Posterior means lie within 4 posterior SDs of the truth (a 4-sigma miss has probability ~6e-5).
        assert np.all(np.abs(mean - truth[name])[informative] < 4 * sd[informative]), name
        if name in em_values:
            # ... and within 1 posterior SD of the EM (maximum-likelihood) estimate.
            assert np.all(np.abs(mean - em_values[name]) < 1.0 * sd), name
    assert idata.attrs["rhat_max"] < 1.02 and idata.attrs["n_divergences"] == 0


def test_90_percent_credible_intervals_cover_the_truth_about_90_percent_of_the_time():
    # Coverage is a property over data sets: pool 4 simulated data sets x 21 parameters ("full").
    covered = []
    for seed in range(4):
        X = simulate("full", seed=seed)
        post = fit_gmm(X, 3, backend="pymc", draws=500, tune=500, chains=2, random_seed=seed).posterior
        order = _truth_order(post["means"].mean(("chain", "draw")).to_numpy())
        values = np.concatenate(
            [
                post["weights"].to_numpy()[..., order].reshape(-1, 3),
                post["means"].to_numpy()[..., order, :].reshape(-1, 6),
                post["covariances"].to_numpy()[..., order, :, :].reshape(-1, 12),
            ],
            axis=1,
        )
        truth = np.concatenate([TRUE_WEIGHTS, TRUE_MEANS.ravel(), TRUE_COVS["full"].ravel()])
        lo, hi = np.quantile(values, [0.05, 0.95], axis=0)
        covered.extend((lo <= truth) & (truth <= hi))
    # 84 indicators (correlated within a data set): expected 0.9; 0.78 is about 3 binomial SDs below.
    assert np.mean(covered) >= 0.78


@pytest.mark.parametrize("method", ["advi", "fullrank_advi"])
def test_advi_means_agree_with_nuts(method):
    X = simulate("full", n=600, seed=3)
    nuts = fit_gmm(X, 3, backend="pymc", draws=500, tune=500, chains=2, random_seed=2)
    advi = fit_gmm(X, 3, method=method, draws=1000, random_seed=2)
    assert advi.attrs["advi_converged"] == 1
    nuts_mean = nuts.posterior["means"].mean(("chain", "draw")).to_numpy()
    nuts_sd = nuts.posterior["means"].std(("chain", "draw")).to_numpy()
    advi_mean = advi.posterior["means"].mean(("chain", "draw")).to_numpy()
    # Same labelling (both relabelled to the same EM reference); means within 1.5 NUTS posterior SDs.
    assert np.all(np.abs(advi_mean - nuts_mean) < 1.5 * nuts_sd)
    assert "log_likelihood" in advi.children and advi.log_likelihood[OBSERVED].shape[-1] == len(X)


def test_faithful_posterior_log_likelihood_sits_just_below_the_em_maximum(load_reference_csv):
    # REFERENCE.md: mclust's maximum log-likelihood for faithful, "full" (VVV), 2 components: -1130.264.
    X = load_reference_csv("faithful")
    idata = fit_gmm(X, 2, backend="pymc", draws=500, tune=500, chains=2, random_seed=0)
    total = idata.log_likelihood[OBSERVED].sum("obs_id").to_numpy().ravel()
    published_max = -1130.264
    # No draw exceeds the maximum (up to EM's convergence tolerance); for a regular model the posterior mean
    # log-likelihood sits about p/2 = 5.5 below it (11 free parameters): we allow 1 to 12.
    assert total.max() <= published_max + 0.01
    assert published_max - 12 < total.mean() < published_max - 1


def test_large_data_advi_with_minibatches_recovers_the_means():
    X = simulate("full", n=60_000, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        idata = fit_gmm(
            X, 3, method="advi", minibatch_size=500, draws=200, log_likelihood=False, random_seed=0
        )
    mean = idata.posterior["means"].mean(("chain", "draw")).to_numpy()
    assert np.abs(mean[_truth_order(mean)] - TRUE_MEANS).max() < 0.05
