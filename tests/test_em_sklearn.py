"""fit_em / EMResult against scikit-learn's GaussianMixture, started from identical parameters.

scikit-learn's ``fit`` loop runs ``max_iter`` iterations of (E-step, M-step) and stops early only when the
change of the mean log-likelihood is below ``tol``; with ``tol=0`` it runs exactly ``max_iter`` M-steps, as
``fit_em(..., max_iter=N, tol=0)`` does. ``lower_bound_`` is the mean log-likelihood at the E-step before the
last M-step (after ``N - 1`` updates); ``score(X)`` is the mean log-likelihood at the returned parameters.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

from bayes_gmm.em_baseline import EMResult, fit_em
from bayes_gmm.exceptions import ConvergenceWarning

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
K = 3
REG_COVAR = 1e-6


def starting_parameters(X, covariance_type):
    """A deliberately rough common start: three data points as means, the data's spread as covariance."""
    means = X[[0, 1, 2]].copy()
    weights = np.array([0.45, 0.35, 0.2])
    cov = np.cov(X, rowvar=False, bias=True)
    covariances = {
        "full": np.stack([cov * s for s in (1.0, 0.7, 1.3)]),
        "tied": cov,
        "diag": np.stack([np.diag(cov) * s for s in (1.0, 0.7, 1.3)]),
        "spherical": np.array([np.mean(np.diag(cov)) * s for s in (1.0, 0.7, 1.3)]),
    }[covariance_type]
    return {"weights": weights, "means": means, "covariances": covariances}


def sklearn_precisions(covariances, covariance_type):
    if covariance_type == "full":
        return np.stack([np.linalg.inv(c) for c in covariances])
    if covariance_type == "tied":
        return np.linalg.inv(covariances)
    return 1.0 / covariances


def sklearn_from_start(X, start, covariance_type, *, max_iter, tol):
    gm = GaussianMixture(
        n_components=K,
        covariance_type=covariance_type,
        tol=tol,
        max_iter=max_iter,
        n_init=1,
        reg_covar=REG_COVAR,
        weights_init=start["weights"],
        means_init=start["means"],
        precisions_init=sklearn_precisions(start["covariances"], covariance_type),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        gm.fit(X)
    return gm


def sklearn_with_parameters(result: EMResult) -> GaussianMixture:
    """A GaussianMixture whose fitted attributes are set to `result`'s parameters (sklearn's own Cholesky)."""
    gm = GaussianMixture(n_components=result.n_components, covariance_type=result.covariance_type)
    gm.weights_ = np.array(result.weights)
    gm.means_ = np.array(result.means)
    gm.covariances_ = np.array(result.covariances)
    gm.precisions_cholesky_ = _compute_precision_cholesky(gm.covariances_, result.covariance_type)
    gm.n_features_in_ = result.n_features
    gm.converged_, gm.n_iter_, gm.lower_bound_ = True, result.n_iter, result.log_likelihood
    return gm


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n_steps", [1, 5, 20])
def test_same_iterates_as_sklearn(blobs, covariance_type, n_steps):
    X = blobs
    start = starting_parameters(X, covariance_type)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        ours = fit_em(
            X,
            K,
            covariance_type=covariance_type,
            initial_params=start,
            n_init=1,
            max_iter=n_steps,
            tol=0.0,
            reg_covar=REG_COVAR,
        )
    gm = sklearn_from_start(X, start, covariance_type, max_iter=n_steps, tol=0.0)
    assert gm.n_iter_ == n_steps
    assert ours.n_iter == n_steps
    assert not ours.converged
    assert ours.log_likelihood_history.shape == (n_steps + 1,)

    np.testing.assert_allclose(ours.weights, gm.weights_, rtol=1e-6)
    np.testing.assert_allclose(ours.means, gm.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.covariances, gm.covariances_, rtol=1e-6, atol=1e-9)
    n = X.shape[0]
    np.testing.assert_allclose(ours.log_likelihood / n, gm.score(X), rtol=1e-9)
    np.testing.assert_allclose(ours.log_likelihood_history[-1], ours.log_likelihood, rtol=0, atol=0)
    # sklearn's lower_bound_ is the mean log-likelihood after n_steps - 1 updates
    np.testing.assert_allclose(ours.log_likelihood_history[n_steps - 1] / n, gm.lower_bound_, rtol=1e-9)
    # entry 0 of the history is the log-likelihood at the starting parameters
    start_gm = sklearn_with_parameters(
        EMResult(
            covariance_type=covariance_type,
            weights=start["weights"],
            means=start["means"],
            covariances=start["covariances"],
            precisions_cholesky=start["covariances"],  # unused by the sklearn copy
            log_likelihood=0.0,
            log_likelihood_history=[0.0],
            n_iter=0,
            converged=False,
            n_samples=n,
            train_log_resp_max=np.zeros(n),
        )
    )
    np.testing.assert_allclose(ours.log_likelihood_history[0] / n, start_gm.score(X), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_converges_like_sklearn(blobs, covariance_type):
    """Both stop on the same criterion (change of the mean log-likelihood < tol) at the same iteration."""
    X = blobs
    start = starting_parameters(X, covariance_type)
    tol = 1e-4
    ours = fit_em(X, K, covariance_type=covariance_type, initial_params=start, n_init=1, tol=tol)
    gm = sklearn_from_start(X, start, covariance_type, max_iter=1000, tol=tol)
    assert gm.converged_
    assert ours.converged
    assert ours.n_iter == gm.n_iter_
    np.testing.assert_allclose(ours.weights, gm.weights_, rtol=1e-6)
    np.testing.assert_allclose(ours.means, gm.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.covariances, gm.covariances_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), gm.predict_proba(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), gm.predict(X))


@pytest.fixture(scope="module", params=COVARIANCE_TYPES)
def fitted(request, blobs):
    result = fit_em(blobs, K, covariance_type=request.param, random_seed=0, n_init=2)
    return result, sklearn_with_parameters(result)


def test_predictions_match_sklearn(fitted, blobs):
    ours, gm = fitted
    rng = np.random.default_rng(5)
    X_new = np.concatenate([rng.normal(scale=3.0, size=(100, 3)), [[40.0, -40.0, 40.0]]])
    for X in (blobs, X_new):
        np.testing.assert_allclose(ours.score_samples(X), gm.score_samples(X), rtol=1e-10)
        np.testing.assert_allclose(ours.score(X), gm.score(X), rtol=1e-10)
        np.testing.assert_allclose(ours.predict_proba(X), gm.predict_proba(X), rtol=1e-8, atol=1e-12)
        np.testing.assert_array_equal(ours.predict(X), gm.predict(X))
        np.testing.assert_allclose(ours.bic(X), gm.bic(X), rtol=1e-10)
        np.testing.assert_allclose(ours.aic(X), gm.aic(X), rtol=1e-10)
    # without data, the criteria use the training data
    np.testing.assert_allclose(ours.bic(), gm.bic(blobs), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(), gm.aic(blobs), rtol=1e-10)
    np.testing.assert_allclose(ours.log_likelihood, gm.score(blobs) * blobs.shape[0], rtol=1e-10)


def test_n_parameters_match_sklearn(fitted):
    ours, gm = fitted
    assert ours.n_parameters == gm._n_parameters()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(("k", "d"), [(1, 1), (2, 5), (4, 2)])
def test_n_parameters_match_sklearn_shapes(covariance_type, k, d):
    from bayes_gmm.em_baseline import n_free_parameters

    gm = GaussianMixture(n_components=k, covariance_type=covariance_type)
    gm.means_ = np.zeros((k, d))
    assert n_free_parameters(covariance_type, k, d) == gm._n_parameters()


def test_precisions_cholesky_match_sklearn(fitted):
    ours, gm = fitted
    np.testing.assert_allclose(ours.precisions_cholesky, gm.precisions_cholesky_, rtol=1e-10, atol=1e-12)
