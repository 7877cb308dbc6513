"""Behaviour of fit_em / EMResult: monotone EM, degenerate data, input validation, warm starts, seeds,
sampling, recovery of simulated truth, warnings and information criteria (checked by hand)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

from bayes_gmm.em_baseline import INIT_METHODS, EMResult, fit_em
from bayes_gmm.exceptions import ConvergenceWarning, IllConditionedCovarianceError

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def as_full(result: EMResult) -> np.ndarray:
    """(K, D, D) covariance matrices of a result, built independently of the package."""
    k, d, cov = result.n_components, result.n_features, np.asarray(result.covariances)
    return {
        "full": lambda: cov,
        "tied": lambda: np.broadcast_to(cov, (k, d, d)),
        "diag": lambda: np.stack([np.diag(c) for c in cov]),
        "spherical": lambda: np.stack([c * np.eye(d) for c in cov]),
    }[result.covariance_type]()


def scipy_weighted_log_densities(result: EMResult, X) -> np.ndarray:
    """log w_k + log N(x_i | mu_k, Sigma_k) with SciPy, shape (n_samples, K)."""
    return np.column_stack(
        [
            math.log(w) + stats.multivariate_normal(mean=m, cov=c).logpdf(X)
            for w, m, c in zip(result.weights, result.means, as_full(result), strict=True)
        ]
    )


def quiet_fit(*args, **kwargs) -> EMResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_em(*args, **kwargs)


def model_with(weights, means, covariances, covariance_type, n_samples=100) -> EMResult:
    """An EMResult with exactly these parameters (zero EM updates from them)."""
    means = np.asarray(means, dtype=float)
    X = np.resize(means, (max(n_samples, means.shape[0]), means.shape[1])) + 0.1
    start = {"weights": weights, "means": means, "covariances": covariances}
    result = fit_em(
        X, len(weights), covariance_type=covariance_type, initial_params=start, n_init=1, max_iter=0
    )
    assert result.n_iter == 0
    np.testing.assert_array_equal(result.weights, weights)
    np.testing.assert_array_equal(result.means, means)
    np.testing.assert_array_equal(result.covariances, covariances)
    return result


@pytest.fixture(scope="module", params=COVARIANCE_TYPES)
def fitted(request, blobs):
    return fit_em(blobs, 3, covariance_type=request.param, random_seed=0, n_init=2)


# -- EM monotonicity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("init", INIT_METHODS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_likelihood_never_decreases(blobs, covariance_type, init):
    result = quiet_fit(
        blobs, 3, covariance_type=covariance_type, init=init, n_init=1, max_iter=150, random_seed=1
    )
    history = result.log_likelihood_history
    assert history.shape == (result.n_iter + 1,)
    assert history[-1] == result.log_likelihood
    assert np.all(np.diff(history) >= -1e-10 * np.abs(history[1:]))
    assert history[-1] > history[0]  # EM actually moved
    assert np.all(np.isfinite(history))


def test_log_likelihood_matches_scipy(fitted, blobs):
    """The reported log-likelihood is the data's log-likelihood at the reported parameters."""
    expected = logsumexp(scipy_weighted_log_densities(fitted, blobs), axis=1).sum()
    np.testing.assert_allclose(fitted.log_likelihood, expected, rtol=1e-10)
    assert fitted.n_samples == blobs.shape[0]
    assert fitted.converged


# -- degenerate data -----------------------------------------------------------------------------------


def _data_with_duplicates():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(40, 2)), np.tile([[10.0, 10.0]], (15, 1))])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_duplicated_points_are_kept_finite_by_reg_covar(covariance_type):
    X = _data_with_duplicates()
    reg = 1e-6
    result = fit_em(X, 2, covariance_type=covariance_type, reg_covar=reg, random_seed=0)
    for array in (result.weights, result.means, result.covariances, result.log_likelihood_history):
        assert np.all(np.isfinite(array))
    assert np.isfinite(result.log_likelihood)
    proba = result.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    # the 15 duplicates form one component
    dup = int(np.argmin(np.abs(result.means - 10.0).sum(axis=1)))
    np.testing.assert_allclose(result.means[dup], [10.0, 10.0], atol=1e-8)
    np.testing.assert_allclose(result.weights[dup], 15 / 55, rtol=1e-6)
    if covariance_type != "tied":  # a collapsed own covariance is exactly the regularisation
        np.testing.assert_allclose(as_full(result)[dup], reg * np.eye(2), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_collapse_without_regularisation_raises_clear_error(covariance_type):
    X = _data_with_duplicates()
    with pytest.raises(IllConditionedCovarianceError, match="reg_covar"):
        fit_em(X, 2, covariance_type=covariance_type, reg_covar=0.0, random_seed=0)


def test_component_on_a_single_point():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(size=(40, 2)), [[8.0, 8.0]]])
    resp = np.zeros((41, 2))
    resp[:40, 0] = 1.0
    resp[40, 1] = 1.0
    result = fit_em(X, 2, initial_resp=resp, n_init=1, reg_covar=1e-6)
    assert np.isfinite(result.log_likelihood)
    np.testing.assert_allclose(result.covariances[1], 1e-6 * np.eye(2), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(result.weights, [40 / 41, 1 / 41], rtol=1e-6)
    with pytest.raises(IllConditionedCovarianceError, match="reg_covar"):
        fit_em(X, 2, initial_resp=resp, n_init=1, reg_covar=0.0)


# -- input validation ----------------------------------------------------------------------------------

GOOD_X = np.random.default_rng(0).normal(size=(30, 2))


@pytest.mark.parametrize(
    ("X", "kwargs", "error", "match"),
    [
        (np.where(np.eye(30, 2) == 1, np.nan, GOOD_X), {}, ValueError, r"X must contain only finite values"),
        (np.where(np.eye(30, 2) == 1, np.inf, GOOD_X), {}, ValueError, r"X must contain only finite values"),
        (GOOD_X[:, 0], {}, ValueError, r"X must be 2-D.*reshape\(-1, 1\)"),
        (GOOD_X.reshape(30, 2, 1), {}, ValueError, r"X must be 2-D"),
        (GOOD_X[:2], {"n_components": 3}, ValueError, r"X has 2 sample\(s\) but at least 3"),
        (GOOD_X, {"n_components": 0}, ValueError, r"n_components must be >= 1"),
        (GOOD_X, {"n_components": -2}, ValueError, r"n_components must be >= 1"),
        (GOOD_X, {"n_components": 2.5}, TypeError, r"n_components must be a positive integer"),
        (GOOD_X, {"n_components": True}, TypeError, r"n_components must be a positive integer"),
        (GOOD_X, {"covariance_type": "ful"}, ValueError, r"covariance_type must be one of"),
        (GOOD_X, {"init": "kmeans+"}, ValueError, r"init must be one of"),
        (GOOD_X, {"n_init": 0}, ValueError, r"n_init must be an integer >= 1"),
        (GOOD_X, {"max_iter": -1}, ValueError, r"max_iter must be an integer >= 0"),
        (GOOD_X, {"tol": -1e-3}, ValueError, r"tol must be a finite number >= 0"),
        (GOOD_X, {"reg_covar": float("nan")}, ValueError, r"reg_covar must be a finite number >= 0"),
        ([["a", "b"], ["c", "d"], ["e", "f"]], {}, TypeError, r"X must be numeric data"),
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]}),
            {},
            TypeError,
            r"X must contain only numeric columns.*\['b'\]",
        ),
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}, dtype=object),
            {},
            TypeError,
            r"X must contain only numeric columns",
        ),
        (pd.Series([1.0, 2.0, 3.0, 4.0]), {}, ValueError, r"X must be 2-D"),
        # complex data must not be silently cast to real (NumPy only warns and drops the imaginary part)
        (np.array([[1 + 2j, 3.0], [4.0, 5j], [1.0, 1.0]]), {}, TypeError, r"X"),
    ],
    ids=[
        "nan",
        "inf",
        "1-D",
        "3-D",
        "too-few-samples",
        "zero-components",
        "negative-components",
        "float-components",
        "bool-components",
        "covariance-type",
        "init",
        "n_init",
        "max_iter",
        "tol",
        "reg_covar",
        "strings",
        "string-column",
        "object-dataframe",
        "pandas-series",
        "complex",
    ],
)
def test_bad_input_raises(X, kwargs, error, match):
    kwargs = {"n_components": 2, **kwargs}
    n_components = kwargs.pop("n_components")
    with pytest.raises(error, match=match):
        fit_em(X, n_components, **kwargs)


def test_bad_initial_parameters_raise(fitted, blobs):
    X = blobs
    params = {"weights": fitted.weights, "means": fitted.means, "covariances": fitted.covariances}
    other = "diag" if fitted.covariance_type != "diag" else "full"
    with pytest.raises(ValueError, match="initial_params was fitted with covariance_type"):
        fit_em(X, 3, covariance_type=other, initial_params=fitted, n_init=1)
    with pytest.raises(ValueError, match="initial_params must be an EMResult or a mapping"):
        fit_em(
            X, 3, covariance_type=fitted.covariance_type, initial_params={"weights": fitted.weights}, n_init=1
        )
    with pytest.raises(ValueError, match=r"initial_params\['means'\] must have shape \(3, 3\)"):
        fit_em(
            X, 3, covariance_type=fitted.covariance_type, initial_params={**params, "means": X[:2]}, n_init=1
        )
    with pytest.raises(ValueError, match=r"initial_params\['weights'\] must be non-negative and sum to 1"):
        fit_em(
            X,
            3,
            covariance_type=fitted.covariance_type,
            initial_params={**params, "weights": [0.5, 0.5, 0.5]},
            n_init=1,
        )
    with pytest.raises(ValueError, match=r"initial_params\['means'\] must be finite"):
        bad_means = np.array(fitted.means)
        bad_means[0, 0] = np.nan
        fit_em(
            X,
            3,
            covariance_type=fitted.covariance_type,
            initial_params={**params, "means": bad_means},
            n_init=1,
        )
    with pytest.raises(ValueError, match="n_init must be 1"):
        fit_em(X, 3, covariance_type=fitted.covariance_type, initial_params=fitted, n_init=2)
    with pytest.raises(ValueError, match="at most one of initial_params and initial_resp"):
        fit_em(X, 3, initial_params=fitted, initial_resp=fitted.predict_proba(X), n_init=1)
    with pytest.raises(ValueError, match=r"initial_resp must have shape"):
        fit_em(X, 3, initial_resp=np.ones((10, 3)), n_init=1)
    with pytest.raises(ValueError, match="initial_resp must be finite and non-negative"):
        fit_em(X, 3, initial_resp=-fitted.predict_proba(X), n_init=1)


def test_prediction_input_is_validated(fitted):
    with pytest.raises(ValueError, match=r"X has 2 feature\(s\) but the model was fitted on 3"):
        fitted.predict(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="X must contain only finite values"):
        fitted.score_samples(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        fitted.sample(0)


def test_result_is_immutable(fitted):
    with pytest.raises(dataclasses.FrozenInstanceError):
        fitted.log_likelihood = 0.0
    with pytest.raises(ValueError, match="read-only"):
        fitted.means[0, 0] = 1.0


# -- input containers ----------------------------------------------------------------------------------


def test_dataframe_and_list_inputs_give_the_same_fit(blobs):
    reference = fit_em(blobs, 3, covariance_type="full", random_seed=3, n_init=2)
    for X in (pd.DataFrame(blobs, columns=["a", "b", "c"]), blobs.tolist(), np.asfortranarray(blobs)):
        result = fit_em(X, 3, covariance_type="full", random_seed=3, n_init=2)
        for name in ("weights", "means", "covariances", "log_likelihood_history"):
            np.testing.assert_array_equal(getattr(result, name), getattr(reference, name))
    np.testing.assert_array_equal(
        reference.predict_proba(pd.DataFrame(blobs, columns=["a", "b", "c"])), reference.predict_proba(blobs)
    )


# -- warm starts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_warm_start_converges_quickly_to_the_same_solution(blobs, covariance_type):
    X = blobs
    reference = fit_em(X, 3, covariance_type=covariance_type, random_seed=0, n_init=2, tol=1e-9)
    assert reference.converged
    mapping = {"weights": reference.weights, "means": reference.means, "covariances": reference.covariances}
    starts = {
        "EMResult": {"initial_params": reference},
        "mapping": {"initial_params": mapping},
        "resp": {"initial_resp": reference.predict_proba(X)},
        "unnormalised resp": {"initial_resp": 7.0 * reference.predict_proba(X)},
    }
    for label, start in starts.items():
        result = fit_em(X, 3, covariance_type=covariance_type, n_init=1, tol=1e-9, **start)
        assert result.converged, label
        assert result.n_iter <= 3, label
        # EM's last steps along flat directions are slow: parameters agree to ~1e-4 relative
        np.testing.assert_allclose(result.log_likelihood, reference.log_likelihood, rtol=1e-8, err_msg=label)
        np.testing.assert_allclose(result.weights, reference.weights, rtol=1e-3, err_msg=label)
        np.testing.assert_allclose(result.means, reference.means, rtol=1e-3, atol=1e-3, err_msg=label)
        np.testing.assert_allclose(result.covariances, reference.covariances, rtol=1e-3, err_msg=label)


def test_warm_start_from_hard_labels(truth):
    X, labels, _ = truth
    cold = fit_em(X, 3, random_seed=0)
    warm = fit_em(X, 3, initial_resp=np.eye(3)[labels], n_init=1)
    assert warm.n_iter < cold.n_iter + 5
    np.testing.assert_allclose(warm.log_likelihood, cold.log_likelihood, rtol=1e-8)


def test_max_iter_zero_returns_the_start(blobs):
    start = {"weights": [0.2, 0.3, 0.5], "means": blobs[:3], "covariances": [1.0, 2.0, 3.0]}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = fit_em(blobs, 3, covariance_type="spherical", initial_params=start, n_init=1, max_iter=0)
    assert result.n_iter == 0
    assert not result.converged
    np.testing.assert_array_equal(result.means, blobs[:3])
    np.testing.assert_array_equal(result.covariances, [1.0, 2.0, 3.0])
    assert result.log_likelihood_history.shape == (1,)
    expected = logsumexp(scipy_weighted_log_densities(result, blobs), axis=1).sum()
    np.testing.assert_allclose(result.log_likelihood, expected, rtol=1e-12)


# -- seeds ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("init", INIT_METHODS)
def test_same_seed_same_result(blobs, init):
    a = quiet_fit(blobs, 3, init=init, n_init=2, random_seed=123, max_iter=50)
    b = quiet_fit(blobs, 3, init=init, n_init=2, random_seed=123, max_iter=50)
    for name in ("weights", "means", "covariances", "log_likelihood_history"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = quiet_fit(blobs, 3, init=init, n_init=2, random_seed=np.random.default_rng(5), max_iter=50)
    d = quiet_fit(blobs, 3, init=init, n_init=2, random_seed=np.random.default_rng(5), max_iter=50)
    np.testing.assert_array_equal(c.log_likelihood_history, d.log_likelihood_history)


@pytest.mark.parametrize("init", INIT_METHODS)
def test_different_seeds_can_differ(blobs, init):
    # The hierarchical start depends on the seed only through the subset of rows it clusters.
    subset = {"init_sample_size": 100} if init == "hc" else {}
    starts = {
        quiet_fit(
            blobs, 3, init=init, n_init=1, random_seed=seed, max_iter=1, **subset
        ).log_likelihood_history[0]
        for seed in range(6)
    }
    assert len(starts) > 1


# -- sampling ------------------------------------------------------------------------------------------

SAMPLE_MODELS = {
    "full": ([[1.0, 0.6], [0.6, 2.0]], [[0.5, -0.2], [-0.2, 0.3]], [[2.0, 0.0], [0.0, 0.1]]),
    "tied": [[1.0, -0.5], [-0.5, 0.8]],
    "diag": [[1.0, 0.2], [0.5, 2.0], [3.0, 0.3]],
    "spherical": [0.5, 1.0, 2.0],
}


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_moments_match_parameters(covariance_type):
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0], [5.0, 1.0], [-3.0, 4.0]])
    model = model_with(weights, means, np.array(SAMPLE_MODELS[covariance_type]), covariance_type)
    n = 200_000
    X, labels = model.sample(n, random_seed=0)
    assert X.shape == (n, 2)
    assert labels.shape == (n,)
    assert set(np.unique(labels)) <= {0, 1, 2}
    freq = np.bincount(labels, minlength=3) / n
    np.testing.assert_allclose(freq, weights, atol=5 * np.sqrt(0.25 / n))
    full_covs = as_full(model)
    for k in range(3):
        Xk = X[labels == k]
        se = np.sqrt(np.diag(full_covs[k]) / len(Xk))
        assert np.all(np.abs(Xk.mean(axis=0) - means[k]) < 5 * se)
        np.testing.assert_allclose(np.cov(Xk, rowvar=False), full_covs[k], rtol=0.03, atol=0.01)
    # overall mean of the mixture
    np.testing.assert_allclose(X.mean(axis=0), weights @ means, atol=0.03)
    # reproducible
    X2, labels2 = model.sample(n, random_seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(labels, labels2)
    X3, _ = model.sample(10, random_seed=1)
    assert X3.shape == (10, 2)
    assert not np.array_equal(X3, X[:10])


# -- recovering simulated truth ------------------------------------------------------------------------

TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
TRUE_COVS = np.array([[[1.0, 0.5], [0.5, 1.0]], [[0.6, 0.0], [0.0, 1.5]], [[1.2, -0.4], [-0.4, 0.5]]])


@pytest.fixture(scope="module")
def truth():
    rng = np.random.default_rng(2024)
    n = 3000
    labels = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    chol = np.linalg.cholesky(TRUE_COVS)
    X = TRUE_MEANS[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, 2)))
    return X, labels, n


@pytest.mark.parametrize("init", INIT_METHODS)
def test_recovers_simulated_truth(truth, init):
    X, labels, n = truth
    result = fit_em(X, 3, covariance_type="full", init=init, random_seed=0)
    # match components to the truth by their means
    cost = ((result.means[:, None, :] - TRUE_MEANS[None]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    order = rows[np.argsort(cols)]  # order[j] = fitted component of true component j
    # close to the maximum-likelihood estimates from the (here known) labels ...
    emp_weights = np.bincount(labels, minlength=3) / n
    emp_means = np.stack([X[labels == k].mean(axis=0) for k in range(3)])
    emp_covs = np.stack([np.cov(X[labels == k], rowvar=False, bias=True) for k in range(3)])
    np.testing.assert_allclose(result.weights[order], emp_weights, atol=0.005)
    np.testing.assert_allclose(result.means[order], emp_means, atol=0.02)
    np.testing.assert_allclose(result.covariances[order], emp_covs, atol=0.05)
    # ... and so to the simulated truth, within sampling error
    np.testing.assert_allclose(result.weights[order], TRUE_WEIGHTS, atol=0.03)
    np.testing.assert_allclose(result.means[order], TRUE_MEANS, atol=0.1)
    np.testing.assert_allclose(result.covariances[order], TRUE_COVS, atol=0.2)
    accuracy = np.mean(order[labels] == result.predict(X))
    assert accuracy > 0.98


# -- warnings ------------------------------------------------------------------------------------------


def test_convergence_warning_when_max_iter_too_small(blobs):
    with pytest.warns(ConvergenceWarning, match=r"did not converge in max_iter=2"):
        result = fit_em(blobs, 3, max_iter=2, random_seed=0, n_init=1)
    assert not result.converged
    assert result.n_iter == 2


def test_no_warning_when_converged(blobs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = fit_em(blobs, 3, random_seed=0)
    assert result.converged
    assert result.n_iter < 1000


# -- information criteria by hand ----------------------------------------------------------------------


def expected_n_parameters(covariance_type, k, d):
    return {
        "full": k - 1 + k * d + k * d * (d + 1) // 2,
        "tied": k - 1 + k * d + d * (d + 1) // 2,
        "diag": k - 1 + 2 * k * d,
        "spherical": k - 1 + k * d + k,
    }[covariance_type]


def test_information_criteria_by_hand(fitted, blobs):
    n, d = blobs.shape
    p = expected_n_parameters(fitted.covariance_type, 3, d)
    assert fitted.n_parameters == p
    weighted = scipy_weighted_log_densities(fitted, blobs)
    log_lik = logsumexp(weighted, axis=1).sum()
    log_resp_max = np.max(weighted - logsumexp(weighted, axis=1, keepdims=True), axis=1)

    bic = -2 * log_lik + p * np.log(n)
    np.testing.assert_allclose(fitted.bic(), bic, rtol=1e-10)
    np.testing.assert_allclose(fitted.bic(blobs), bic, rtol=1e-10)
    np.testing.assert_allclose(fitted.aic(), -2 * log_lik + 2 * p, rtol=1e-10)
    icl = bic - 2 * log_resp_max.sum()
    np.testing.assert_allclose(fitted.icl(), icl, rtol=1e-9)
    np.testing.assert_allclose(fitted.icl(blobs), icl, rtol=1e-9)
    assert fitted.icl() >= fitted.bic()
    assert fitted.icl() > fitted.bic()  # overlapping blobs: some assignments are uncertain

    # on new data the criteria use that data's log-likelihood and size
    X_new = blobs[:123] + 0.1
    log_lik_new = logsumexp(scipy_weighted_log_densities(fitted, X_new), axis=1).sum()
    np.testing.assert_allclose(fitted.bic(X_new), -2 * log_lik_new + p * np.log(123), rtol=1e-10)
    np.testing.assert_allclose(fitted.aic(X_new), -2 * log_lik_new + 2 * p, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(("k", "d"), [(1, 1), (2, 4), (5, 2)])
def test_n_parameters_formula(covariance_type, k, d):
    from bayes_gmm.em_baseline import n_free_parameters

    assert n_free_parameters(covariance_type, k, d) == expected_n_parameters(covariance_type, k, d)


def test_predict_proba_and_predict(fitted, blobs):
    proba = fitted.predict_proba(blobs)
    assert proba.shape == (blobs.shape[0], 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    weighted = scipy_weighted_log_densities(fitted, blobs)
    np.testing.assert_allclose(
        proba, np.exp(weighted - logsumexp(weighted, axis=1, keepdims=True)), atol=1e-10
    )
    np.testing.assert_array_equal(fitted.predict(blobs), np.argmax(weighted, axis=1))
    np.testing.assert_allclose(fitted.score(blobs), fitted.log_likelihood / blobs.shape[0], rtol=1e-12)


def test_fewer_distinct_rows_than_components_are_said_with_the_fix():
    # Two distinct points, each repeated: a third component can only end with weight 0 or on a point that
    # another has (mclust: NA; scikit-learn fits, and its own tests expect a fit: tests/test_sklearn_suite.py)
    X = np.repeat([[0.0, 0.0], [5.0, 5.0]], 50, axis=0)
    with pytest.warns(
        UserWarning, match=r"n_components = 3 is more than the 2 distinct rows of X: .* Use n_components <= 2"
    ):
        result = fit_em(X, 3, random_seed=0)
    assert np.isfinite(result.log_likelihood)
    weights = np.r_[np.ones(99), 0.0]
    X[-1] = [9.0, 9.0]  # a third point, but of weight 0
    with pytest.warns(UserWarning, match=r"2 distinct rows of X with a positive sample_weight"):
        fit_em(X, 3, sample_weight=weights, random_seed=0)
    with pytest.warns(UserWarning, match=r"n_components = 2 is more than the 1 distinct rows"):
        fit_em(np.ones((20, 2)), 2, random_seed=0)  # one point, repeated
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit_em(X[:-1], 2, random_seed=0)  # as many components as points: no warning
