"""scikit-learn's own Gaussian-mixture tests, ported onto fit_em and EMResult.

Ported from scikit-learn 1.9.1, ``sklearn/mixture/tests/test_gaussian_mixture.py`` and
``sklearn/mixture/tests/test_mixture.py`` (BSD-3-Clause): the tests that apply to a maximum-likelihood fit,
with their data, their tolerances and their assertions, scikit-learn's estimator and helpers serving as the
reference where the upstream test compares. fit_em takes covariances where GaussianMixture takes
precisions, and an earlier EMResult (``initial_params``) where it uses ``warm_start``. The comparisons of
iterates, predictions and criteria at identical parameters are in ``test_em_sklearn.py``; the end of this
module holds regressions that the port found (each failed before its fix).
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import make_spd_matrix
from sklearn.utils.estimator_checks import _NotAnArray

from bayes_gmm.covariance import get_structure
from bayes_gmm.em_baseline import INIT_METHODS, _fit, _result, fit_em, kmeans_plusplus
from bayes_gmm.exceptions import ConvergenceWarning

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def random_data(rng, n_samples=200, n_components=2, n_features=2, scale=50):
    """Upstream's ``RandomData``: the true parameters, data drawn for each covariance type, and labels."""
    weights = rng.rand(n_components)
    weights = weights / weights.sum()
    means = rng.rand(n_components, n_features) * scale
    covariances = {
        "spherical": 0.5 + rng.rand(n_components),
        "diag": (0.5 + rng.rand(n_components, n_features)) ** 2,
        "tied": make_spd_matrix(n_features, random_state=rng),
        "full": np.array([make_spd_matrix(n_features, random_state=rng) * 0.5 for _ in range(n_components)]),
    }
    sizes = [int(np.round(w * n_samples)) for w in weights]
    X = {}
    for covariance_type in COVARIANCE_TYPES:
        draw = np.random.RandomState(0)  # upstream's generate_data draws every type from seed 0
        full = get_structure(covariance_type).to_full(covariances[covariance_type], n_components, n_features)
        X[covariance_type] = np.vstack(
            [draw.multivariate_normal(m, c, size) for m, c, size in zip(means, full, sizes, strict=True)]
        )
    labels = np.repeat(np.arange(n_components), sizes)
    return types.SimpleNamespace(weights=weights, means=means, covariances=covariances, X=X, Y=labels)


def true_start(data, covariance_type):
    return {
        "weights": data.weights,
        "means": data.means,
        "covariances": data.covariances[covariance_type],
    }


def quiet(function, *args, **kwargs):
    """`function(*args, **kwargs)` with ConvergenceWarning silenced (upstream's filterwarnings marks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return function(*args, **kwargs)


def continued(X, result, **options):
    """fit_em from `result`'s parameters: GaussianMixture's ``warm_start=True`` refit."""
    return quiet(fit_em, X, result.n_components, initial_params=result, n_init=1, **options)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_check_covariances(covariance_type):
    rng = np.random.RandomState(0)
    data = random_data(rng)
    X = random_data(rng).X[covariance_type]
    not_positive = np.ones((2, 2, 2))
    not_positive[0] = np.eye(2)
    not_positive[0, 0, 0] = -1.0
    bad_shape = {
        "full": np.ones((3, 2, 2)),
        "tied": np.ones((3, 3)),
        "diag": np.ones((3, 2)),
        "spherical": np.ones(3),
    }[covariance_type]
    bad_values = {
        "full": not_positive,
        "tied": not_positive[0],
        "diag": np.full((2, 2), -1.0),
        "spherical": np.full(2, -1.0),
    }[covariance_type]
    start = true_start(data, covariance_type)
    options = {"covariance_type": covariance_type, "n_init": 1}
    with pytest.raises(ValueError, match=r"initial_params\['covariances'\] must have shape"):
        fit_em(X, 2, initial_params={**start, "covariances": bad_shape}, **options)
    value = "a variance of -1" if covariance_type in ("diag", "spherical") else "eigenvalue -1"
    with pytest.raises(
        ValueError, match=rf"must be symmetric, positive-definite; .* has {value} <= 0\. Pass"
    ):
        fit_em(X, 2, initial_params={**start, "covariances": bad_values}, **options)
    given = np.copy(start["covariances"])
    fit_em(X, 2, initial_params={**start, "covariances": given}, **options)
    np.testing.assert_array_equal(given, data.covariances[covariance_type])


@pytest.mark.parametrize("max_iter", [1, 2, 50])
def test_convergence_detected_when_continuing(max_iter):
    X = random_data(np.random.RandomState(0)).X["full"]
    result = quiet(fit_em, X, 2, max_iter=max_iter, random_seed=0)
    for _ in range(100):
        if result.converged:
            break
        result = continued(X, result, max_iter=max_iter)
    assert result.converged
    assert result.n_iter <= max_iter


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_likelihood_increases_one_update_at_a_time(covariance_type):
    X = random_data(np.random.RandomState(0), scale=7).X[covariance_type]
    options = {"covariance_type": covariance_type, "reg_covar": 0.0, "max_iter": 1, "tol": 1e-7}
    result = quiet(fit_em, X, 2, n_init=1, random_seed=0, **options)
    for _ in range(600):
        if result.converged:
            break
        previous, result = result, continued(X, result, **options)
        assert result.score(X) >= previous.score(X)
    assert result.converged


# --- regressions the port found ---------------------------------------------------------------------------


def test_the_last_update_counts_for_convergence():
    X = random_data(np.random.RandomState(0)).X["full"]
    converged = fit_em(X, 2, random_seed=0)
    assert converged.converged
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        again = fit_em(X, 2, initial_params=converged, n_init=1, max_iter=1)
    assert again.converged and again.n_iter == 1


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_non_symmetric_covariances_are_refused(covariance_type):
    X = random_data(np.random.RandomState(0)).X[covariance_type]
    triangular = np.array([[1.0, 5.0], [0.0, 1.0]])  # its symmetric part is not positive definite
    covariances = triangular if covariance_type == "tied" else np.stack([np.eye(2), triangular])
    start = {"weights": [0.5, 0.5], "means": X[:2], "covariances": covariances}
    which = "the tied covariance" if covariance_type == "tied" else "component 1's covariance"
    message = (
        rf"initial_params\['covariances'\] must be symmetric, positive-definite; {which} is not symmetric "
        r"\(entry \[0, 1\] is 5 but \[1, 0\] is 0\)\. Pass whole symmetric matrices .* \(C \+ C\.T\) / 2"
    )
    with pytest.raises(ValueError, match=message):
        fit_em(X, 2, covariance_type=covariance_type, initial_params=start, n_init=1)
    symmetric = np.array([[1.0, 0.5], [0.5 + 1e-12, 1.0]])  # symmetric within np.allclose: accepted
    start = {**start, "covariances": symmetric if covariance_type == "tied" else np.stack([symmetric] * 2)}
    assert np.isfinite(
        fit_em(X, 2, covariance_type=covariance_type, initial_params=start, n_init=1).log_likelihood
    )


SPARSE = [
    scipy.sparse.csr_array,
    scipy.sparse.csc_array,
    scipy.sparse.coo_array,
    scipy.sparse.csr_matrix,
    scipy.sparse.csc_matrix,
    scipy.sparse.coo_matrix,
]


@pytest.mark.parametrize("sparse", SPARSE, ids=lambda cls: cls.__name__)
def test_sparse_input_is_refused_with_how_to_densify(monkeypatch, sparse):
    X = random_data(np.random.RandomState(0)).X["full"]
    result = fit_em(X, 2, random_seed=0)

    def fail(*args, **kwargs):
        pytest.fail("computation started before the sparse input was refused")

    monkeypatch.setattr(_fit, "_run_em", fail)
    monkeypatch.setattr(_fit, "initial_responsibilities", fail)
    monkeypatch.setattr(_result, "log_responsibilities", fail)
    message = rf"X must be dense .* got a SciPy sparse {sparse.__name__} of shape \(200, 2\).* X\.toarray\(\)"
    for call in (lambda Z: fit_em(Z, 2), result.predict, result.predict_proba, result.score_samples):
        with pytest.raises(TypeError, match=message):
            call(sparse(X))


def test_objects_converted_by_their_array_method_are_accepted():
    X = random_data(np.random.RandomState(0)).X["full"]
    result = fit_em(_NotAnArray(X), 2, random_seed=0)
    assert result.log_likelihood == fit_em(X, 2, random_seed=0).log_likelihood
    np.testing.assert_array_equal(result.predict_proba(_NotAnArray(X)), result.predict_proba(X))
    with pytest.raises(TypeError, match=r"X must be real-valued; got complex numbers"):
        fit_em(_NotAnArray(X + 1j), 2)


@pytest.mark.parametrize("init", INIT_METHODS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_equal_sample_weights_give_the_unweighted_fit(covariance_type, init):
    X = random_data(np.random.RandomState(0), n_components=3, scale=5).X[covariance_type]
    options = {"covariance_type": covariance_type, "init": init, "random_seed": 0}
    unweighted = fit_em(X, 3, **options)
    ones = fit_em(X, 3, sample_weight=np.ones(len(X)), **options)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(getattr(ones, name), getattr(unweighted, name))
    assert ones.n_iter == unweighted.n_iter
    np.testing.assert_array_equal(ones.predict_proba(X), unweighted.predict_proba(X))
    np.testing.assert_allclose(ones.log_likelihood, unweighted.log_likelihood, rtol=1e-12)
    threes = fit_em(X, 3, sample_weight=np.full(len(X), 3.0), **options)  # the same fit, 3 times the weight
    np.testing.assert_allclose(threes.means, unweighted.means, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(threes.log_likelihood, 3 * unweighted.log_likelihood, rtol=1e-9)


def test_kmeans_plusplus_with_equal_weights_draws_the_unweighted_centers():
    X = np.random.RandomState(0).randn(100, 3)
    expected = kmeans_plusplus(X, 4, np.random.default_rng(1))
    for weights in (np.ones(100), np.full(100, 0.25)):
        got = kmeans_plusplus(X, 4, np.random.default_rng(1), sample_weight=weights)
        np.testing.assert_array_equal(got, expected)
