"""The covariance structures, the shared Gaussian math and the fused E-step kernel (bayes_gmm.covariance)
against SciPy and scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from bayes_gmm.covariance import get_structure, log_gaussian_densities, log_responsibilities
from bayes_gmm.covariance._kernels import fused_estep_statistics
from bayes_gmm.exceptions import IllConditionedCovarianceError

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")  # scikit-learn's; mclust's in test_mclust_*
K, D = 4, 3


def precision_cholesky(covariances, covariance_type):
    return get_structure(covariance_type).precision_cholesky(covariances)


def full_precision_cholesky(prec_chol, covariance_type, k, d):
    return get_structure(covariance_type).full_precision_cholesky(prec_chol, k, d)


def log_det_precision_cholesky(prec_chol, covariance_type, d, k=K):
    return get_structure(covariance_type).log_det_precision_cholesky(prec_chol, k, d)


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
    np.testing.assert_array_equal(get_structure(covariance_type).to_full(covariances, K, D), full_covs)


@pytest.mark.parametrize("problem", COVARIANCE_TYPES, indirect=True)
def test_log_det_precision_cholesky(problem):
    covariance_type, _, _, _, covariances = problem
    prec_chol = precision_cholesky(covariances, covariance_type)
    log_det = log_det_precision_cholesky(prec_chol, covariance_type, D)
    expected = -0.5 * np.array([np.linalg.slogdet(c)[1] for c in as_full(covariances, covariance_type)])
    assert log_det.shape == (K,)
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
        log_det_precision_cholesky(prec_chol, covariance_type, D),
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


def test_fused_estep_in_parallel_equals_the_serial_pass_and_scipy():
    """Data above PARALLEL_MIN_SAMPLES run on the parallel kernel: same statistics, chunks summed in order."""
    from bayes_gmm.covariance._kernels import PARALLEL_MIN_SAMPLES

    rng = np.random.default_rng(5)
    X = rng.normal(scale=2.0, size=(PARALLEL_MIN_SAMPLES + 37, D))
    means = rng.normal(scale=2.0, size=(K, D))
    covariances = random_covariances(rng, "full")
    weights = rng.dirichlet(np.ones(K))
    prec_chol = precision_cholesky(covariances, "full")
    arguments = (
        np.ascontiguousarray(X.T),
        means,
        full_precision_cholesky(prec_chol, "full", K, D),
        log_det_precision_cholesky(prec_chol, "full", D),
        np.log(weights),
    )
    parallel = fused_estep_statistics(*arguments, full_scatter=True)
    serial = fused_estep_statistics(*arguments, full_scatter=True, parallel=False)
    for a, b in zip(parallel, serial, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-9)
    weighted = scipy_log_densities(X, means, covariances) + np.log(weights)
    np.testing.assert_allclose(parallel[0], logsumexp(weighted, axis=1).sum(), rtol=1e-11)


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
        log_det_precision_cholesky(prec_chol, "spherical", d, k),
        np.log(weights),
        full_scatter=False,
    )
    weighted = scipy_log_densities(X, means, as_full(covariances, "spherical", k=k, d=d)) + np.log(weights)
    np.testing.assert_allclose(log_lik, logsumexp(weighted, axis=1).sum(), rtol=1e-11)
    np.testing.assert_allclose(nk.sum(), X.shape[0], rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(("k", "d"), [(1, 1), (3, 2), (4, 5)])
def test_parameter_counts_and_shapes_match_scikit_learn(covariance_type, k, d):
    structure = get_structure(covariance_type)
    gm = GaussianMixture(k, covariance_type=covariance_type).fit(
        np.random.default_rng(0).normal(size=(40, d))
    )
    assert structure.n_parameters(k, d) + (k - 1) + k * d == gm._n_parameters()
    assert structure.shape(k, d) == gm.covariances_.shape == gm.precisions_cholesky_.shape


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_matches_scikit_learn(covariance_type):
    from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, D)) @ rng.normal(size=(D, D))
    resp = rng.dirichlet(np.ones(K), size=60)
    nk, means, expected = _estimate_gaussian_parameters(X, resp, 1e-6, covariance_type)
    scatter = np.stack([(resp[:, k] * (X - means[k]).T) @ (X - means[k]) / nk[k] for k in range(K)])
    got = get_structure(covariance_type).m_step(scatter, nk, 1e-6)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_from_full_inverts_to_full(covariance_type):
    structure = get_structure(covariance_type)
    covariances = random_covariances(np.random.default_rng(5), covariance_type)
    full = structure.to_full(covariances, K, D)
    np.testing.assert_allclose(structure.from_full(full, np.full(K, 1 / K)), covariances, rtol=1e-12)


def test_unknown_structure_names_the_choices():
    with pytest.raises(
        ValueError, match=r"covariance_type must be one of \('full', 'tied', 'diag', 'spherical', 'EII'"
    ):
        get_structure("VVV ")


def test_the_kernels_exp_matches_math_exp_on_its_range():
    """The kernel's own exp (a polynomial the compiler vectorises) on [-600, 0], where it is used: within
    1 ulp compiled plainly, within 1e-13 relative with the kernels' fast-math flags (as it runs, inlined)."""
    import numba

    from bayes_gmm.covariance._kernels import _FASTMATH, _exp_mantissa

    def kernel_exp(xs):
        out = np.empty_like(xs)
        scale = np.empty(1)
        bits = scale.view(np.int64)
        for i in range(xs.size):
            out[i] = _exp_mantissa(xs[i], bits, 0) * scale[0]
        return out

    rng = np.random.default_rng(0)
    xs = np.concatenate([[0.0, -600.0, -np.log(2) / 2, -np.log(2)], -rng.uniform(0, 600, 100_000)])
    xs = np.concatenate([xs, -rng.uniform(0, 1e-6, 1000), -np.arange(0, 600, 0.5)])
    expected = np.exp(xs)
    plain, fast = numba.njit(kernel_exp), numba.njit(fastmath=_FASTMATH)(kernel_exp)
    assert np.max(np.abs(plain(xs) - expected) / np.spacing(expected)) <= 1.0
    np.testing.assert_allclose(fast(xs), expected, rtol=1e-13, atol=0)


def test_fused_estep_responsibilities_across_the_range_of_log_density_gaps():
    """Two components whose log-densities differ by 0 to 800 across the samples: the responsibilities
    (via nk and sx) and the log-likelihood agree with SciPy, the ones below exp(-600) counted as 0."""
    x = np.linspace(0.0, 40.0, 4001)[:, None]
    means, variances, weights = np.array([[0.0], [0.0]]), np.array([1.0, 0.0016]), np.array([0.5, 0.5])
    prec_chol = precision_cholesky(variances, "spherical")
    log_lik, nk, sx, _ = fused_estep_statistics(
        np.ascontiguousarray(x.T),
        means,
        full_precision_cholesky(prec_chol, "spherical", 2, 1),
        log_det_precision_cholesky(prec_chol, "spherical", 1, 2),
        np.log(weights),
        full_scatter=False,
    )
    weighted = scipy_log_densities(x, means, as_full(variances, "spherical", k=2, d=1)) + np.log(weights)
    assert np.ptp(weighted[:, 0] - weighted[:, 1]) > 800  # the gaps span the kernel's cut-off at -600
    log_density = logsumexp(weighted, axis=1)
    resp = np.exp(weighted - log_density[:, None])
    np.testing.assert_allclose(log_lik, log_density.sum(), rtol=1e-13)
    np.testing.assert_allclose(nk, resp.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(sx[:, 0], resp.T @ x[:, 0], rtol=1e-13)
