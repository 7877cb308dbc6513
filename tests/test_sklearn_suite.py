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
from scipy import stats
from scipy.special import logsumexp
from sklearn.covariance import EmpiricalCovariance
from sklearn.datasets import make_spd_matrix
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters
from sklearn.utils.estimator_checks import _NotAnArray
from sklearn.utils.extmath import fast_logdet

from bayes_gmm.covariance import get_structure
from bayes_gmm.em_baseline import INIT_METHODS, EMResult, _fit, _result, fit_em, kmeans_plusplus
from bayes_gmm.em_baseline._mstep import parameters_from_responsibilities
from bayes_gmm.exceptions import ConvergenceWarning, IllConditionedCovarianceError

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


# --- test_check_weights, test_check_means, test_check_precisions ------------------------------------------


def test_check_weights_and_means():
    rng = np.random.RandomState(0)
    data = random_data(rng)
    X, start = data.X["full"], true_start(data, "full")
    bad = {
        "weights bad shape": (
            {"weights": rng.rand(2, 1)},
            r"initial_params\['weights'\] must have shape \(2,\)",
        ),
        "weights bad range": ({"weights": rng.rand(2) + 1}, r"'weights'\] must be non-negative and sum to 1"),
        "weights bad norm": ({"weights": np.array([0.2, 0.3])}, r"sum to 1; got sum 0\.5"),
        "means bad shape": ({"means": rng.rand(3, 2)}, r"initial_params\['means'\] must have shape \(2, 2\)"),
    }
    for change, message in bad.values():
        with pytest.raises(ValueError, match=message):
            fit_em(X, 2, initial_params={**start, **change}, n_init=1)
    given = {key: np.copy(value) for key, value in start.items()}
    fit_em(X, 2, initial_params=given, n_init=1)
    for key, value in start.items():  # the start is used, not changed
        np.testing.assert_array_equal(given[key], value)


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


# --- test_suffstat_sk_*: the M-step of each covariance type -------------------------------------------------


def m_step(X, resp, covariance_type):
    return parameters_from_responsibilities(X, resp, 0.0, covariance_type)


def test_suffstat_full():
    rng = np.random.RandomState(0)
    X = rng.rand(500, 2)
    # one component with random responsibilities: the weighted scatter about the weighted mean
    resp = rng.rand(500, 1)
    _, means, covariances = m_step(X, resp, "full")
    ecov = EmpiricalCovariance(assume_centered=True).fit(np.sqrt(resp / resp.mean()) * (X - means[0]))
    assert ecov.error_norm(covariances[0], norm="frobenius") == pytest.approx(0.0, abs=1e-7)
    assert ecov.error_norm(covariances[0], norm="spectral") == pytest.approx(0.0, abs=1e-7)
    # responsibilities all one: the empirical covariance
    _, _, covariances = m_step(X, np.ones((500, 1)), "full")
    ecov = EmpiricalCovariance().fit(X)
    assert ecov.error_norm(covariances[0], norm="frobenius") == pytest.approx(0.0, abs=1e-7)
    assert ecov.error_norm(covariances[0], norm="spectral") == pytest.approx(0.0, abs=1e-7)


def two_component_responsibilities():
    rng = np.random.RandomState(0)
    resp = rng.rand(500, 2)
    return rng.rand(500, 2), resp / resp.sum(axis=1)[:, np.newaxis]


def test_suffstat_tied_is_the_weighted_mean_of_full():
    X, resp = two_component_responsibilities()
    nk = resp.sum(axis=0)
    _, _, full = m_step(X, resp, "full")
    _, _, tied = m_step(X, resp, "tied")
    ecov = EmpiricalCovariance()
    ecov.covariance_ = np.sum(nk[:, np.newaxis, np.newaxis] * full, 0) / X.shape[0]
    assert ecov.error_norm(tied, norm="frobenius") == pytest.approx(0.0, abs=1e-7)
    assert ecov.error_norm(tied, norm="spectral") == pytest.approx(0.0, abs=1e-7)


def test_suffstat_diag_is_the_diagonal_of_full():
    X, resp = two_component_responsibilities()
    _, _, full = m_step(X, resp, "full")
    _, _, diag = m_step(X, resp, "diag")
    ecov = EmpiricalCovariance()
    for cov_full, cov_diag in zip(full, diag, strict=True):
        ecov.covariance_ = np.diag(np.diag(cov_full))
        assert ecov.error_norm(np.diag(cov_diag), norm="frobenius") == pytest.approx(0.0, abs=1e-7)


def test_suffstat_spherical_is_the_variance_of_the_flattened_data():
    X = np.random.RandomState(0).rand(500, 2)
    _, _, spherical = m_step(X, np.ones((500, 1)), "spherical")
    centred = (X - X.mean(axis=0)).ravel()
    np.testing.assert_allclose(spherical, [centred @ centred / centred.size], rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_from_responsibilities_matches_sklearn(covariance_type):
    """Upstream's _estimate_gaussian_parameters, with its nk normalised to weights."""
    X, resp = two_component_responsibilities()
    nk, means, covariances = _estimate_gaussian_parameters(X, resp, 1e-6, covariance_type)
    ours = parameters_from_responsibilities(X, resp, 1e-6, covariance_type)
    for got, expected in zip(ours, (nk / nk.sum(), means, covariances), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10)


# --- test_gaussian_mixture_log_probabilities --------------------------------------------------------------


def test_log_probabilities_match_scipy():
    rng = np.random.RandomState(0)
    data = random_data(rng)
    weights, means = data.weights, data.means
    variances = rng.rand(2, 2)
    X = rng.rand(500, 2)
    per_type = {  # one set of variances, as every covariance type stores it
        "full": (np.array([np.diag(v) for v in variances]), variances),
        "diag": (variances, variances),
        "tied": (np.diag(variances.mean(axis=0)), [variances.mean(axis=0)] * 2),
        "spherical": (variances.mean(axis=1), [[v, v] for v in variances.mean(axis=1)]),
    }
    for covariance_type, (covariances, naive_variances) in per_type.items():
        naive = np.column_stack(
            [
                stats.norm.logpdf(X, m, np.sqrt(v)).sum(axis=1)
                for m, v in zip(means, naive_variances, strict=True)
            ]
        )
        model = EMResult(
            covariance_type=covariance_type,
            weights=weights,
            means=means,
            covariances=covariances,
            precisions_cholesky=get_structure(covariance_type).precision_cholesky(covariances),
            log_likelihood=0.0,
            log_likelihood_history=[0.0],
            n_iter=0,
            converged=False,
            n_samples=1,
            train_log_resp_max_sum=0.0,
        )
        mixture = naive + np.log(weights)
        np.testing.assert_allclose(model.score_samples(X), logsumexp(mixture, axis=1), rtol=1e-12)
        np.testing.assert_allclose(
            model.predict_proba(X), np.exp(mixture - logsumexp(mixture, axis=1, keepdims=True)), atol=1e-12
        )


# --- test_gaussian_mixture_estimate_log_prob_resp, _predict_predict_proba, _fit_predict -------------------


@pytest.mark.parametrize(
    ("seed", "max_iter", "tol"),
    [(0, 2, 1e-7), (1, 2, 1e-1), (3, 300, 1e-7), (4, 300, 1e-1)],
    ids=["strict-non-convergence", "loose-non-convergence", "strict-convergence", "loose-convergence"],
)
def test_predict_and_predict_proba(seed, max_iter, tol):
    data = random_data(np.random.RandomState(seed))
    for covariance_type in COVARIANCE_TYPES:
        X = data.X[covariance_type]
        start = true_start(data, covariance_type)
        result = quiet(
            fit_em,
            X,
            2,
            covariance_type=covariance_type,
            initial_params=start,
            n_init=1,
            max_iter=max_iter,
            tol=tol,
        )
        assert result.n_iter <= max_iter
        proba = result.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_array_equal(result.predict(X), proba.argmax(axis=1))
        assert adjusted_rand_score(data.Y, result.predict(X)) > 0.95


# --- test_gaussian_mixture_fit, _fit_best_params, test_multiple_init, test_init ---------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_recovers_the_truth(covariance_type):
    data = random_data(np.random.RandomState(0))
    result = fit_em(data.X[covariance_type], 2, covariance_type=covariance_type, n_init=20, reg_covar=0.0)
    np.testing.assert_allclose(np.sort(result.weights), np.sort(data.weights), rtol=0.1, atol=1e-2)
    order, true_order = result.means[:, 0].argsort(), data.means[:, 0].argsort()
    np.testing.assert_allclose(result.means[order], data.means[true_order], rtol=0.1, atol=1e-2)
    structure = get_structure(covariance_type)
    fitted = np.linalg.inv(result.full_covariances())
    truth = np.linalg.inv(structure.to_full(data.covariances[covariance_type], 2, 2))
    ecov = EmpiricalCovariance()
    for k, h in zip(
        np.trace(fitted, axis1=1, axis2=2).argsort(), np.trace(truth, axis1=1, axis2=2).argsort(), strict=True
    ):
        ecov.covariance_ = truth[h]
        assert ecov.error_norm(fitted[k]) < 0.15


def test_more_starts_are_never_worse():
    """test_multiple_init: five default starts score at least as well as one."""
    X = np.random.RandomState(0).randn(50, 5)
    for covariance_type in COVARIANCE_TYPES:
        one = fit_em(X, 2, covariance_type=covariance_type, random_seed=0, n_init=1)
        five = fit_em(X, 2, covariance_type=covariance_type, random_seed=0, n_init=5)
        assert five.score(X) >= one.score(X)


def test_n_init_keeps_the_best_start():
    """test_gaussian_mixture_fit_best_params: start i draws from the i-th spawned generator, so the starts
    of n_init=m are the first m of n_init=10, and each larger n_init keeps the best of more starts."""
    X = random_data(np.random.RandomState(0), n_samples=60, n_components=4, scale=4).X["full"]
    scores = [
        quiet(fit_em, X, 4, init="random", n_init=n, reg_covar=1e-4, random_seed=0).log_likelihood
        for n in range(1, 11)
    ]
    assert np.all(np.diff(scores) >= 0.0)
    assert scores[-1] > scores[0]  # some later start found a better maximum, and was kept


def test_more_starts_after_one_update_are_never_worse():
    """test_init: n_init=10 with max_iter=1 ends at least as high as n_init=1."""
    for seed in range(15):
        X = random_data(np.random.RandomState(seed), n_samples=50, scale=1).X["full"]
        one = quiet(fit_em, X, 2, n_init=1, max_iter=1, random_seed=seed)
        ten = quiet(fit_em, X, 2, n_init=10, max_iter=1, random_seed=seed)
        assert ten.log_likelihood >= one.log_likelihood


# --- convergence: test_gaussian_mixture_fit_convergence_warning, test_gaussian_mixture_n_iter, -------------
# --- test_warm_start, test_convergence_detected_with_warm_start, test_monotonic_likelihood -----------------


def test_convergence_warning_and_n_iter_with_one_update():
    data = random_data(np.random.RandomState(0), scale=1)
    for covariance_type in COVARIANCE_TYPES:
        with pytest.warns(ConvergenceWarning, match=r"did not converge in max_iter=1 .* Increase max_iter"):
            result = fit_em(data.X[covariance_type], 2, covariance_type=covariance_type, max_iter=1, n_init=1)
        assert not result.converged
    X = np.random.RandomState(0).rand(10, 5)
    assert quiet(fit_em, X, 1, max_iter=1).n_iter == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_continuing_a_fit_is_the_same_as_running_on(seed):
    X = np.random.RandomState(seed).rand(500, 2)
    options = {"reg_covar": 0.0, "random_seed": seed, "n_init": 1}
    two = quiet(fit_em, X, 2, max_iter=2, **options)
    one = quiet(fit_em, X, 2, max_iter=1, **options)
    one_more = continued(X, one, max_iter=1, reg_covar=0.0)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(getattr(one_more, name), getattr(two, name), rtol=1e-10)
    assert one_more.score(X) > one.score(X)
    # five updates at a time from a start that needs more: not converged at first, converged at last
    result = quiet(fit_em, X, 2, max_iter=5, **options)
    assert not result.converged
    for _ in range(1000):
        if result.converged:
            break
        result = continued(X, result, max_iter=5, reg_covar=0.0)
    assert result.converged


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


# --- starts: test_init_means_not_duplicated, test_means_for_all_inits, _precisions_init_diag ---------------


@pytest.mark.parametrize("init", INIT_METHODS)
def test_starts_and_fits_for_every_init(init):
    X = random_data(np.random.RandomState(0), scale=5).X["full"]
    start = fit_em(X, 2, init=init, max_iter=0, random_seed=0, n_init=1)
    assert not np.allclose(start.means[0], start.means[1])
    result = fit_em(X, 2, init=init, random_seed=0)
    assert result.means.shape == (2, 2)
    assert np.all(X.min(axis=0) <= result.means)
    assert np.all(result.means <= X.max(axis=0))
    assert result.converged


def test_start_from_parameters_equals_start_from_their_responsibilities():
    """A start given as the parameters of k-means labels runs exactly as one given as the labels."""
    rng = np.random.RandomState(0)
    shifted, stretched = rng.randn(300, 2) + np.array([20, 20]), rng.randn(300, 2) @ [[0.0, -0.7], [3.5, 0.7]]
    X = np.vstack([shifted, stretched])
    resp = np.eye(2)[(X[:, 0] > 10).astype(int)]
    weights, means, covariances = parameters_from_responsibilities(X, resp, 1e-6, "diag")
    start = {"weights": weights, "means": means, "covariances": covariances}
    from_params = fit_em(X, 2, covariance_type="diag", initial_params=start, n_init=1)
    from_resp = fit_em(X, 2, covariance_type="diag", initial_resp=resp, n_init=1)
    assert from_params.n_iter == from_resp.n_iter
    np.testing.assert_allclose(from_params.precisions_cholesky, from_resp.precisions_cholesky, rtol=1e-12)


# --- criteria: test_bic_1d_1component, test_gaussian_mixture_aic_bic --------------------------------------


def test_bic_is_the_same_for_every_type_with_one_feature_and_one_component():
    X = np.random.RandomState(0).randn(100, 1)
    bics = [fit_em(X, 1, covariance_type=covariance_type).bic(X) for covariance_type in COVARIANCE_TYPES]
    np.testing.assert_allclose(bics, bics[0], rtol=1e-10)
    expected = GaussianMixture(1).fit(X).bic(X)  # same sign: lower is better
    np.testing.assert_allclose(bics[0], expected, rtol=1e-7)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_aic_bic_near_the_gaussian_entropy(covariance_type):
    X = np.random.RandomState(0).randn(50, 3)
    n_samples, n_features = X.shape
    entropy = 0.5 * (fast_logdet(np.cov(X.T, bias=1)) + n_features * (1 + np.log(2 * np.pi)))
    result = fit_em(X, 2, covariance_type=covariance_type, max_iter=200, random_seed=0)
    bound = n_features / np.sqrt(n_samples)
    assert (result.aic(X) - (2 * n_samples * entropy + 2 * result.n_parameters)) / n_samples < bound
    assert (
        result.bic(X) - (2 * n_samples * entropy + np.log(n_samples) * result.n_parameters)
    ) / n_samples < bound


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_aic_bic_of_the_fit_equal_sklearns_fit(covariance_type):
    """Both fits reach the same maximum of well-separated data, so their criteria agree."""
    X = random_data(np.random.RandomState(0)).X[covariance_type]
    ours = fit_em(X, 2, covariance_type=covariance_type, tol=1e-10, random_seed=0)
    gm = GaussianMixture(2, covariance_type=covariance_type, tol=1e-10, n_init=5, random_state=0).fit(X)
    np.testing.assert_allclose(ours.bic(), gm.bic(X), rtol=1e-8)
    np.testing.assert_allclose(ours.aic(), gm.aic(X), rtol=1e-8)


# --- test_sample, test_regularisation, test_gaussian_mixture_single_component_stable ------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample(covariance_type):
    X = random_data(np.random.RandomState(0), scale=7, n_components=3).X[covariance_type]
    result = fit_em(X, 3, covariance_type=covariance_type, random_seed=0)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1; got 0"):
        result.sample(0)
    X_s, y_s = result.sample(20000, random_seed=0)
    assert X_s.shape == (20000, 2)
    full = result.full_covariances()
    for k in range(3):
        np.testing.assert_array_almost_equal(full[k], np.cov(X_s[y_s == k].T), decimal=1)
        np.testing.assert_array_almost_equal(result.means[k], X_s[y_s == k].mean(axis=0), decimal=1)
    for size in range(1, 100):
        assert result.sample(size)[0].shape == (size, 2)


def test_regularisation():
    X = np.vstack((np.ones((5, 5)), np.zeros((5, 5))))
    for covariance_type in COVARIANCE_TYPES:
        with pytest.raises(IllConditionedCovarianceError, match="reg_covar"):
            quiet(fit_em, X, 10, covariance_type=covariance_type, reg_covar=0.0, random_seed=0)
        result = quiet(fit_em, X, 10, covariance_type=covariance_type, reg_covar=1e-6, random_seed=0)
        assert np.isfinite(result.log_likelihood)
        assert np.all(np.isclose(result.means, 0.0, atol=1e-6) | np.isclose(result.means, 1.0, atol=1e-6))


def test_single_component_on_three_points_and_too_many_components():
    X = np.random.RandomState(0).multivariate_normal(np.zeros(2), np.identity(2), size=3)
    assert fit_em(X, 1).sample()[0].shape == (1, 2)
    with pytest.raises(ValueError, match=r"10 sample\(s\) but at least 12 are needed"):
        fit_em(np.random.RandomState(0).rand(10, 5), 12)


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
    monkeypatch.setattr(_fit, "start_parameters", fail)
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
