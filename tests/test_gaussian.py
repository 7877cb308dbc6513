"""The shared Gaussian math (bayes_gmm._gaussian) and the fused E-step kernel against SciPy references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from bayes_gmm._gaussian import (
    covariances_from_precision_cholesky,
    full_precision_cholesky,
    log_det_precision_cholesky,
    log_gaussian_densities,
    log_responsibilities,
    precision_cholesky,
)
from bayes_gmm.em_baseline._kernels import fused_estep_statistics
from bayes_gmm.exceptions import IllConditionedCovarianceError

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
K, D = 4, 3


def random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.3 * np.eye(d)


def random_covariances(rng, covariance_type, k=K, d=D):
    if covariance_type == "full":
        return np.stack([random_spd(rng, d) for _ in range(k)])
    if covariance_type == "tied":
        return random_spd(rng, d)
    if covariance_type == "diag":
        return rng.uniform(0.2, 3.0, size=(k, d))
    return rng.uniform(0.2, 3.0, size=k)


def as_full(covariances, covariance_type, k=K, d=D):
    """(K, D, D) stack of covariance matrices, built independently of the package."""
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (k, d, d))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return np.stack([c * np.eye(d) for c in covariances])


@pytest.fixture
def problem(request):
    covariance_type = request.param
    rng = np.random.default_rng(COVARIANCE_TYPES.index(covariance_type))
    X = rng.normal(scale=2.0, size=(200, D))
    means = rng.normal(scale=2.0, size=(K, D))
    covariances = random_covariances(rng, covariance_type)
    weights = rng.dirichlet(np.ones(K))
    return covariance_type, X, weights, means, covariances


def scipy_log_densities(X, means, full_covs):
    return np.column_stack(
        [stats.multivariate_normal(mean=m, cov=c).logpdf(X) for m, c in zip(means, full_covs, strict=True)]
    )


@pytest.mark.parametrize("problem", COVARIANCE_TYPES, indirect=True)
def test_precision_cholesky_inverts_covariance(problem):
    covariance_type, _, _, _, covariances = problem
    prec_chol = precision_cholesky(covariances, covariance_type)
    assert prec_chol.shape == covariances.shape
    full_covs = as_full(covariances, covariance_type)
    full_p = full_precision_cholesky(prec_chol, covariance_type, K, D)
    assert full_p.shape == (K, D, D)
    for k in range(K):
        # P is upper triangular and P P^T is the precision matrix
        np.testing.assert_array_equal(np.tril(full_p[k], -1), 0.0)
        np.testing.assert_allclose(
            full_p[k] @ full_p[k].T, np.linalg.inv(full_covs[k]), rtol=1e-10, atol=1e-12
        )
    np.testing.assert_allclose(
        covariances_from_precision_cholesky(prec_chol, covariance_type), covariances, rtol=1e-10
    )


@pytest.mark.parametrize("problem", COVARIANCE_TYPES, indirect=True)
def test_log_det_precision_cholesky(problem):
    covariance_type, _, _, _, covariances = problem
    prec_chol = precision_cholesky(covariances, covariance_type)
    log_det = log_det_precision_cholesky(prec_chol, covariance_type, D)
    expected = -0.5 * np.array([np.linalg.slogdet(c)[1] for c in as_full(covariances, covariance_type)])
    if covariance_type == "tied":
        assert np.ndim(log_det) == 0
        expected = expected[0]
    np.testing.assert_allclose(log_det, expected, rtol=1e-12)


@pytest.mark.parametrize("problem", COVARIANCE_TYPES, indirect=True)
def test_log_gaussian_densities_match_scipy(problem):
    covariance_type, X, _, means, covariances = problem
    prec_chol = precision_cholesky(covariances, covariance_type)
    got = log_gaussian_densities(X, means, prec_chol, covariance_type)
    expected = scipy_log_densities(X, means, as_full(covariances, covariance_type))
    assert got.shape == (X.shape[0], K)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("problem", COVARIANCE_TYPES, indirect=True)
def test_log_responsibilities_match_scipy(problem):
    covariance_type, X, weights, means, covariances = problem
    prec_chol = precision_cholesky(covariances, covariance_type)
    log_density, log_resp = log_responsibilities(X, weights, means, prec_chol, covariance_type)
    weighted = scipy_log_densities(X, means, as_full(covariances, covariance_type)) + np.log(weights)
    expected_density = logsumexp(weighted, axis=1)
    np.testing.assert_allclose(log_density, expected_density, rtol=1e-10)
    np.testing.assert_allclose(log_resp, weighted - expected_density[:, None], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(logsumexp(log_resp, axis=1), 0.0, atol=1e-12)
    assert np.all(log_resp <= 1e-12)


def test_log_responsibilities_empty_component_is_finite():
    """A component with weight 0 gets responsibility exactly 0 and the density stays finite."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    weights = np.array([0.6, 0.4, 0.0])
    means = rng.normal(size=(3, 2))
    prec_chol = precision_cholesky(np.ones((3, 2)), "diag")
    with np.errstate(all="raise"):
        log_density, log_resp = log_responsibilities(X, weights, means, prec_chol, "diag")
    assert np.all(np.isfinite(log_density))
    assert np.all(np.exp(log_resp[:, 2]) == 0.0)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-12)


def test_log_responsibilities_far_outlier_no_underflow():
    """A point far from every component still gets a finite density and normalised responsibilities."""
    X = np.array([[1e4, -1e4], [0.0, 0.0]])
    means = np.array([[0.0, 0.0], [5.0, 5.0]])
    covs = np.array([1.0, 2.0])
    prec_chol = precision_cholesky(covs, "spherical")
    log_density, log_resp = log_responsibilities(X, np.array([0.5, 0.5]), means, prec_chol, "spherical")
    weighted = scipy_log_densities(X, means, as_full(covs, "spherical", k=2, d=2)) + np.log(0.5)
    np.testing.assert_allclose(log_density, logsumexp(weighted, axis=1), rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    ("covariances", "covariance_type"),
    [
        (np.array([[[1.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]), "full"),  # singular
        (np.array([[1.0, 2.0], [2.0, 1.0]]), "tied"),  # indefinite
        (np.array([[1.0, 0.0], [1.0, 1.0]]), "diag"),  # zero variance
        (np.array([1.0, -1.0]), "spherical"),  # negative variance
        (np.array([1.0, np.nan]), "spherical"),
    ],
)
def test_precision_cholesky_rejects_non_positive_definite(covariances, covariance_type):
    with pytest.raises(IllConditionedCovarianceError, match="reg_covar"):
        precision_cholesky(covariances, covariance_type)


# -- the fused numba E-step --------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n_samples", [37, 9001])  # one chunk; several chunks and partial blocks
def test_fused_estep_statistics_match_scipy(covariance_type, n_samples):
    rng = np.random.default_rng(n_samples)
    X = rng.normal(scale=2.0, size=(n_samples, D))
    means = rng.normal(scale=2.0, size=(K, D))
    covariances = random_covariances(rng, covariance_type)
    weights = rng.dirichlet(np.ones(K))
    prec_chol = precision_cholesky(covariances, covariance_type)
    full_scatter = covariance_type in ("full", "tied")

    log_lik, nk, sx, sxx = fused_estep_statistics(
        np.ascontiguousarray(X.T),
        means,
        full_precision_cholesky(prec_chol, covariance_type, K, D),
        np.broadcast_to(log_det_precision_cholesky(prec_chol, covariance_type, D), (K,)),
        np.log(weights),
        full_scatter=full_scatter,
    )

    weighted = scipy_log_densities(X, means, as_full(covariances, covariance_type)) + np.log(weights)
    log_density = logsumexp(weighted, axis=1)
    resp = np.exp(weighted - log_density[:, None])
    diff = X[:, None, :] - means[None]  # (N, K, D)
    expected_sx = np.einsum("nk,nkd->kd", resp, diff)
    expected_sxx = np.einsum("nk,nkd,nke->kde", resp, diff, diff)

    np.testing.assert_allclose(log_lik, log_density.sum(), rtol=1e-11)
    np.testing.assert_allclose(nk, resp.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(sx, expected_sx, rtol=1e-9, atol=1e-9 * n_samples)
    if full_scatter:
        np.testing.assert_allclose(sxx, expected_sxx, rtol=1e-9)
    else:
        idx = np.arange(D)
        np.testing.assert_allclose(sxx[:, idx, idx], expected_sxx[:, idx, idx], rtol=1e-9)


def test_fused_estep_many_components_log_likelihood():
    """Many components (the per-sample normaliser product is logged in batches) and far-apart data."""
    rng = np.random.default_rng(7)
    k, d = 40, 2
    X = rng.normal(scale=30.0, size=(5000, d))
    means = rng.normal(scale=30.0, size=(k, d))
    covariances = rng.uniform(0.5, 2.0, size=k)
    weights = rng.dirichlet(np.ones(k))
    prec_chol = precision_cholesky(covariances, "spherical")
    log_lik, nk, _, _ = fused_estep_statistics(
        np.ascontiguousarray(X.T),
        means,
        full_precision_cholesky(prec_chol, "spherical", k, d),
        log_det_precision_cholesky(prec_chol, "spherical", d),
        np.log(weights),
        full_scatter=False,
    )
    weighted = scipy_log_densities(X, means, as_full(covariances, "spherical", k=k, d=d)) + np.log(weights)
    np.testing.assert_allclose(log_lik, logsumexp(weighted, axis=1).sum(), rtol=1e-11)
    np.testing.assert_allclose(nk.sum(), X.shape[0], rtol=1e-12)
