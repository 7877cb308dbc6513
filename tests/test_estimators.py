"""The scikit-learn estimators (GaussianMixture, BayesianGaussianMixture) and the package's front door."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import bayes_gmm
from bayes_gmm import BayesianGaussianMixture, GaussianMixture
from bayes_gmm.covariance import get_structure
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import fit_gmm, membership_probabilities, posterior_log_density

#: Short chains: enough for the estimator's numbers to be compared, not a converged posterior.
SHORT_CHAINS = {"chains": 2, "draws": 40, "tune": 40}
#: The package's own folder, for subprocesses (the one imported here, whatever is installed).
PACKAGE_ROOT = str(Path(bayes_gmm.__file__).parents[1])

ROW_ORDER_DEPENDENT_STARTS = (
    "with several components EM's starts depend on the order of the rows, which the check shuffles for the "
    "weighted fit, so the two fits can end in different local maxima or labelings of the components (with one "
    "component, which has a unique fit, the check passes)"
)
ONE_CLUSTER = (
    "one component puts every point in one cluster, so the labels cannot match the check's three blobs "
    "(adjusted Rand index > 0.4); the three-component instance passes"
)
DEGENERATE_DATA = (
    "the Bayesian fit refuses, before sampling, data on which its posterior is degenerate (here: fewer rows "
    "than a full covariance per component needs, or repeated rows), as fit_gmm documents"
)


def em_expected_failures(estimator) -> dict[str, str]:
    if estimator.n_components == 1:
        return {"check_clustering": ONE_CLUSTER}
    return {"check_sample_weight_equivalence_on_dense_data": ROW_ORDER_DEPENDENT_STARTS}


def bayes_expected_failures(estimator) -> dict[str, str]:
    failures = {"check_sample_weight_equivalence_on_dense_data": DEGENERATE_DATA}  # 27 rows of 30 features
    if estimator.n_components == 1:
        failures |= {"check_clustering": ONE_CLUSTER}
    else:  # too few (distinct) rows for three full covariances
        failures |= {
            "check_estimators_nan_inf": DEGENERATE_DATA,
            "check_sample_weights_shape": DEGENERATE_DATA,
            "check_sample_weights_not_overwritten": DEGENERATE_DATA,
        }
    return failures


@parametrize_with_checks(
    [GaussianMixture(), GaussianMixture(n_components=3)],
    expected_failed_checks=em_expected_failures,
    xfail_strict=True,
)
def test_gaussian_mixture_passes_scikit_learns_checks(estimator, check):
    check(estimator)


@pytest.mark.slow  # about a minute: some 150 short NUTS fits
@pytest.mark.filterwarnings("ignore::bayes_gmm.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [BayesianGaussianMixture(**SHORT_CHAINS), BayesianGaussianMixture(n_components=3, **SHORT_CHAINS)],
    expected_failed_checks=bayes_expected_failures,
    xfail_strict=True,
)
def test_bayesian_gaussian_mixture_passes_scikit_learns_checks(estimator, check):
    check(estimator)


def three_clusters(seed: int = 0, n_samples: int = 600) -> np.ndarray:
    """Three correlated 2-D Gaussian clusters, the second feature on a scale 1000 times the first."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 8.0]])
    covariances = np.array([[[2.0, 1.5], [1.5, 2.0]], [[1.0, -0.6], [-0.6, 1.0]], [[3.0, 0.0], [0.0, 0.5]]])
    labels = rng.choice(3, size=n_samples, p=[0.5, 0.3, 0.2])
    X = means[labels] + np.einsum(
        "nij,nj->ni", np.linalg.cholesky(covariances)[labels], rng.normal(size=(n_samples, 2))
    )
    return X * np.array([1.0, 1000.0])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """150 rows of two clusters in three named columns, with an index that is not 0, 1, ..."""
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0.0, 1.0, (90, 3)), rng.normal(4.0, 0.7, (60, 3))])[rng.permutation(150)]
    return pd.DataFrame(X, columns=["a", "b", "c"], index=np.arange(1000, 1150))


@pytest.fixture(scope="module")
def bayes(frame):
    """A BayesianGaussianMixture fitted to `frame` with short chains, and fit_gmm's fit with the same seed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = BayesianGaussianMixture(2, random_state=5, **SHORT_CHAINS).fit(frame)
        idata = fit_gmm(frame, 2, random_seed=5, **SHORT_CHAINS)
    return estimator, idata


# -- scikit-learn's tools ------------------------------------------------------------------------------


def test_grid_search_over_a_pipeline_picks_the_true_number_of_components_by_held_out_likelihood():
    # The default score of GridSearchCV is the estimator's: the held-out mean log-likelihood. Held out, the
    # surplus components of K = 4, 5 lose (measured: K = 3, full wins on each of the data seeds 0 to 7).
    X = three_clusters(seed=0)
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("gmm", GaussianMixture(tol=1e-4, n_init=2, random_state=0))]
    )
    grid = {"gmm__n_components": [1, 2, 3, 4, 5], "gmm__covariance_type": ["full", "diag", "spherical"]}
    search = GridSearchCV(pipeline, grid, cv=3).fit(X)
    assert search.best_params_ == {"gmm__n_components": 3, "gmm__covariance_type": "full"}
    # The score is the held-out mean log-likelihood of the scaled data, by scipy at the fitted parameters.
    train, test = X[::2], X[1::2]
    fitted = clone(search.best_estimator_).fit(train)
    scaled = fitted["scale"].transform(test)
    gmm = fitted["gmm"]
    log_joint = np.log(gmm.weights_) + np.column_stack(
        [
            stats.multivariate_normal(m, c).logpdf(scaled)
            for m, c in zip(gmm.means_, gmm.covariances_, strict=True)
        ]
    )
    assert fitted.score(test) == pytest.approx(np.mean(logsumexp(log_joint, axis=1)), rel=1e-12)


@pytest.mark.parametrize(
    "estimator", [GaussianMixture(3, covariance_type="EEV"), BayesianGaussianMixture(2, method="advi")]
)
def test_clone_gives_the_same_parameters_and_no_fit(estimator):
    estimator.set_params(random_state=np.random.default_rng(1))
    copy = clone(estimator)
    assert type(copy) is type(estimator)
    assert copy.get_params().keys() == estimator.get_params().keys()
    for name, value in estimator.get_params().items():
        if name != "random_state":
            assert copy.get_params()[name] == value
    assert (
        isinstance(copy.random_state, np.random.Generator) and copy.random_state is not estimator.random_state
    )
    assert clone(copy.set_params(n_components=4)).n_components == 4


def test_clone_of_a_fitted_estimator_is_unfitted(frame):
    fitted = GaussianMixture(2, random_state=0).fit(frame)
    copy = clone(fitted)
    assert not hasattr(copy, "means_") and not hasattr(copy, "n_features_in_")
    with pytest.raises(NotFittedError):
        copy.predict(frame)
    np.testing.assert_array_equal(copy.fit(frame).means_, fitted.means_)


UNPICKLE_AND_PREDICT = """
import pickle, sys
import numpy as np
import pandas as pd
X = pd.read_pickle(sys.argv[1])
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        estimator = pickle.load(f)
    predicted = [estimator.predict_proba(X), estimator.score_samples(X), estimator.predict(X)]
    np.save(path + ".npy", np.column_stack(predicted))
"""


def predictions(estimator, X) -> np.ndarray:
    return np.column_stack([estimator.predict_proba(X), estimator.score_samples(X), estimator.predict(X)])


def test_pickled_fits_predict_the_same_in_a_new_process(bayes, frame, tmp_path):
    # One new process for both estimators: it imports PyMC to unpickle the Bayesian one (~10 s on two
    # busy cores).
    fits = {"em": GaussianMixture(2, covariance_type="diag", random_state=0).fit(frame), "bayes": bayes[0]}
    X = frame[["c", "a", "b"]]  # columns matched by name after unpickling too
    X.to_pickle(tmp_path / "X.pkl")
    for name, estimator in fits.items():
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(estimator))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")])}
    paths = [str(tmp_path / name) for name in ("X.pkl", "em.pkl", "bayes.pkl")]
    result = subprocess.run(
        [sys.executable, "-c", UNPICKLE_AND_PREDICT, *paths],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    for name, estimator in fits.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.pkl.npy"), predictions(estimator, frame))


# -- the same numbers as the functions -----------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV"])
def test_gaussian_mixture_is_fit_em_with_the_same_seed(covariance_type):
    X = three_clusters(seed=1, n_samples=300) / np.array([1.0, 1000.0])
    weights = np.random.default_rng(0).integers(0, 4, size=len(X))
    options = {"covariance_type": covariance_type, "n_init": 3, "tol": 1e-5}
    estimator = GaussianMixture(3, random_state=11, **options).fit(X, sample_weight=weights)
    em = fit_em(X, 3, random_seed=11, sample_weight=weights, **options)
    for attribute in ("weights", "means", "covariances", "precisions_cholesky"):
        np.testing.assert_array_equal(getattr(estimator, f"{attribute}_"), getattr(em, attribute))
    assert (estimator.n_iter_, estimator.converged_) == (em.n_iter, em.converged)
    np.testing.assert_array_equal(estimator.predict_proba(X), em.predict_proba(X))
    np.testing.assert_array_equal(estimator.labels_, em.predict(X))
    assert estimator.lower_bound_ == em.log_likelihood / weights.sum()
    assert estimator.lower_bounds_[-1] == estimator.lower_bound_
    assert estimator.lower_bounds_.shape == (estimator.n_iter_,)  # one per update, as scikit-learn's
    assert (estimator.bic(), estimator.aic(), estimator.bic(X[:50])) == (em.bic(), em.aic(), em.bic(X[:50]))
    # precisions_ are the inverses of covariances_, in their shape
    structure = get_structure(covariance_type)
    precisions = structure.to_full(estimator.precisions_, 3, 2)
    np.testing.assert_allclose(precisions, np.linalg.inv(em.full_covariances()), rtol=1e-9, atol=1e-12)
    assert estimator.precisions_.shape == estimator.covariances_.shape


def test_fit_predict_is_fit_then_labels(frame):
    estimator = GaussianMixture(2, random_state=4)
    np.testing.assert_array_equal(
        estimator.fit_predict(frame), GaussianMixture(2, random_state=4).fit(frame).predict(frame)
    )


def test_the_bayesian_estimator_is_fit_gmm_with_the_same_seed(bayes, frame):
    estimator, idata = bayes
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):  # attrs: the creation time
        xr.testing.assert_equal(estimator.idata_[group].to_dataset(), idata[group].to_dataset())
    posterior = idata.posterior
    np.testing.assert_allclose(estimator.weights_, posterior["weights"].mean(("chain", "draw")), rtol=1e-12)
    np.testing.assert_allclose(estimator.means_, posterior["means"].mean(("chain", "draw")), rtol=1e-12)
    np.testing.assert_allclose(
        estimator.covariances_, posterior["covariances"].mean(("chain", "draw")), rtol=1e-12
    )
    np.testing.assert_allclose(
        estimator.precisions_cholesky_ @ np.swapaxes(estimator.precisions_cholesky_, 1, 2),
        np.linalg.inv(estimator.covariances_),
        rtol=1e-9,
    )
    assert estimator.converged_ == bool(idata.attrs["converged"])
    assert not hasattr(estimator, "n_iter_")  # NUTS has no iterations to count
    new = frame.iloc[::7] + 0.3
    expected = membership_probabilities(idata, new)
    np.testing.assert_array_equal(estimator.predict_proba(new), expected["probability"].to_numpy())
    np.testing.assert_array_equal(estimator.predict(new), expected["most_probable"].to_numpy())
    np.testing.assert_array_equal(estimator.score_samples(new), posterior_log_density(idata, new))
    assert estimator.score(new) == np.mean(posterior_log_density(idata, new))
    np.testing.assert_array_equal(estimator.labels_, membership_probabilities(idata)["most_probable"])


@pytest.mark.parametrize("covariance_type", ["tied", "diag", "spherical", "EII"])
def test_the_bayesian_covariances_have_the_covariance_types_shape(frame, covariance_type):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = BayesianGaussianMixture(
            2, covariance_type=covariance_type, random_state=0, **SHORT_CHAINS
        )
        estimator.fit(frame)
    full = estimator.idata_.posterior["covariances"].mean(("chain", "draw")).to_numpy()  # (K, D, D)
    expected = {
        "tied": full[0],  # every draw's components share one matrix
        "diag": np.diagonal(full, axis1=1, axis2=2),
        "spherical": np.diagonal(full, axis1=1, axis2=2).mean(axis=1),
        "EII": np.broadcast_to(full[0, 0, 0] * np.eye(3), (2, 3, 3)),  # mclust's models are stored full
    }[covariance_type]
    np.testing.assert_allclose(estimator.covariances_, expected, rtol=1e-9, atol=1e-12)
    full_precision = get_structure(covariance_type).to_full(estimator.precisions_cholesky_, 2, 3)
    np.testing.assert_allclose(
        full_precision @ np.swapaxes(full_precision, 1, 2),
        np.linalg.inv(get_structure(covariance_type).to_full(estimator.covariances_, 2, 3)),
        rtol=1e-9,
    )


def test_the_bayesian_estimator_gives_membership_intervals_and_entropy_of_new_points(bayes, frame):
    estimator, idata = bayes
    new = frame.iloc[3:20]
    got = estimator.membership_probabilities(new[["b", "c", "a"]], interval_prob=0.8, max_draws=30)
    xr.testing.assert_identical(got, membership_probabilities(idata, new, interval_prob=0.8, max_draws=30))
    np.testing.assert_array_equal(got["obs_id"], new.index)  # the DataFrame's index labels the points
    xr.testing.assert_identical(estimator.membership_probabilities(), membership_probabilities(idata))


def test_the_bayesian_estimator_samples_the_posterior_predictive(bayes):
    estimator, idata = bayes
    X, labels = estimator.sample(20_000)
    assert X.shape == (20_000, 3) and set(np.unique(labels)) == {0, 1}
    np.testing.assert_array_equal(estimator.sample(5)[0], estimator.sample(5)[0])  # an int random_state
    # The predictive mean is the posterior mean of sum_k w_k mu_k; sampling error about sd / sqrt(n).
    posterior = idata.posterior
    mean = (posterior["weights"] * posterior["means"]).sum("component").mean(("chain", "draw"))
    np.testing.assert_allclose(X.mean(axis=0), mean, atol=4 * X.std(axis=0).max() / np.sqrt(len(X)))
    # Components drawn in proportion to the posterior mean weights.
    np.testing.assert_allclose(np.bincount(labels) / len(labels), estimator.weights_, atol=0.015)


def test_an_advi_fit_has_its_iterations_and_elbo(frame):
    estimator = BayesianGaussianMixture(2, method="advi", draws=50, advi_max_iter=2000, random_state=0).fit(
        frame
    )
    idata = estimator.idata_
    assert (estimator.n_iter_, estimator.lower_bound_) == (
        idata.attrs["advi_iterations"],
        idata.attrs["elbo_final"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.set_params(method="nuts", **SHORT_CHAINS).fit(frame)
    assert not hasattr(estimator, "n_iter_") and not hasattr(estimator, "lower_bound_")  # NUTS has neither


# -- data, seeds and bad input -------------------------------------------------------------------------


def test_dataframe_columns_are_matched_by_name_at_predict_time(frame):
    estimator = GaussianMixture(2, random_state=0).fit(frame)
    np.testing.assert_array_equal(estimator.feature_names_in_, ["a", "b", "c"])
    expected = estimator.predict_proba(frame)
    np.testing.assert_array_equal(estimator.predict_proba(frame[["c", "a", "b"]]), expected)
    np.testing.assert_array_equal(
        estimator.score_samples(frame[["b", "c", "a"]]), estimator.score_samples(frame)
    )
    with pytest.warns(UserWarning, match="does not have valid feature names"):  # scikit-learn's warning
        np.testing.assert_array_equal(estimator.predict_proba(frame.to_numpy()), expected)  # by position
    with pytest.raises(
        ValueError, match=r"feature columns \['a', 'b', 'c'\].*missing \['b'\].*unknown \['B'\]"
    ):
        estimator.predict(frame.rename(columns={"b": "B"}))
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        with pytest.warns(UserWarning, match="does not have valid feature names"):
            estimator.predict(frame.to_numpy()[:, :2])


def test_columns_that_are_not_strings_are_matched_by_name_too(frame):
    # scikit-learn sets feature_names_in_ only for string column names; a frame made from an array has 0, 1, 2
    unnamed = pd.DataFrame(frame.to_numpy())
    estimator = GaussianMixture(2, random_state=0).fit(unnamed)
    assert not hasattr(estimator, "feature_names_in_")
    np.testing.assert_array_equal(
        estimator.predict_proba(unnamed[[2, 0, 1]]), estimator.predict_proba(unnamed)
    )
    np.testing.assert_array_equal(
        estimator.predict_proba(unnamed), fit_em(unnamed, 2, random_seed=0).predict_proba(unnamed)
    )


def test_repeated_column_names_are_refused_with_the_fix(frame):
    repeated = frame.set_axis(["a", "b", "a"], axis=1)
    with pytest.raises(ValueError, match=r"X must have distinct column names.*\['a'\].*columns.duplicated"):
        GaussianMixture(2).fit(repeated)


def test_the_bayesian_estimator_matches_columns_by_name(bayes, frame):
    estimator, _ = bayes
    np.testing.assert_array_equal(
        estimator.predict_proba(frame[["c", "b", "a"]]), estimator.predict_proba(frame)
    )
    assert list(estimator.idata_.posterior["feature"].to_numpy()) == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"missing \['c'\]"):
        estimator.membership_probabilities(frame[["a", "b"]])


def test_random_state_takes_ints_generators_and_random_states(frame):
    def means(random_state):
        return GaussianMixture(3, n_init=2, init_params="random", random_state=random_state).fit(frame).means_

    np.testing.assert_array_equal(means(7), fit_em(frame, 3, n_init=2, init="random", random_seed=7).means)
    from_generator = fit_em(frame, 3, n_init=2, init="random", random_seed=np.random.default_rng(7)).means
    np.testing.assert_array_equal(means(np.random.default_rng(7)), from_generator)
    np.testing.assert_array_equal(means(np.random.RandomState(7)), means(np.random.RandomState(7)))
    generator = np.random.default_rng(7)
    assert not np.array_equal(means(generator), means(generator))  # it advances, as in scikit-learn
    with pytest.raises(TypeError, match=r"random_state must be None, an int.*RandomState; got 0.5"):
        means(0.5)
    with pytest.raises(
        ValueError, match=r"random_state must be .*RandomState; got -1\. Pass e\.g\. random_state=0"
    ):
        means(-1)


def test_sample_is_seeded_by_random_state(frame):
    estimator = GaussianMixture(2, random_state=3).fit(frame)
    X, labels = estimator.sample(50)
    expected = estimator.result_.sample(50, random_seed=3)
    np.testing.assert_array_equal(X, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    with pytest.raises(NotFittedError):
        GaussianMixture().sample(3)


def test_warm_start_continues_from_the_last_fit(frame):
    estimator = GaussianMixture(2, init_params="random", max_iter=2, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        first = estimator.fit(frame).result_
    second = estimator.set_params(max_iter=1000).fit(frame).result_
    expected = fit_em(frame, 2, initial_params=first, n_init=1)
    np.testing.assert_array_equal(second.means, expected.means)
    assert second.log_likelihood_history[0] == pytest.approx(first.log_likelihood, rel=1e-12)
    # the same columns in another order: the start is the last fit's, its columns matched by name
    third = estimator.fit(frame[["c", "a", "b"]]).result_
    assert third.log_likelihood_history[0] == pytest.approx(second.log_likelihood, rel=1e-9)
    assert third.feature_names == ("a", "b", "c")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"n_components": 3}, "n_components 2 -> 3"),
        ({"covariance_type": "diag"}, "covariance_type 'full' -> 'diag'"),
    ],
)
def test_warm_start_refuses_a_last_fit_that_does_not_fit_with_the_fix(frame, change, said):
    estimator = GaussianMixture(2, warm_start=True, random_state=0).fit(frame)
    with pytest.raises(ValueError, match=rf"warm_start=True .*{re.escape(said)}.*Set warm_start=False"):
        estimator.set_params(**change).fit(frame)
    with pytest.raises(ValueError, match=r"warm_start=True .*n_features 3 -> 2"):
        GaussianMixture(2, warm_start=True).fit(frame.to_numpy()).fit(frame.to_numpy()[:, :2])


def test_bad_parameters_are_named():
    X = three_clusters(n_samples=50)
    with pytest.raises(
        ValueError,
        match=r"init_params must be one of \(.*'kmeans'.*\); got 'k-means\+\+'\. Did you mean init_params='kmeans\+\+'",
    ):
        GaussianMixture(2, init_params="k-means++").fit(X)
    with pytest.raises(ValueError, match="n_init must be an integer >= 1; got 0"):
        GaussianMixture(2, n_init=0).fit(X)
    with pytest.raises(
        ValueError, match=r"method must be one of \('nuts', 'advi', 'fullrank_advi'\); got 'vi'"
    ):
        BayesianGaussianMixture(2, method="vi").fit(X)
    with pytest.raises(ValueError, match="sample_weight must give at least n_components = 2 rows a positive"):
        BayesianGaussianMixture(2).fit(X, sample_weight=np.zeros(len(X)))


# -- the front door ------------------------------------------------------------------------------------


def test_every_public_name_resolves_from_the_package():
    for name in bayes_gmm.__all__:
        assert getattr(bayes_gmm, name) is not None
        assert name in dir(bayes_gmm)
    assert bayes_gmm.fit_em is fit_em and bayes_gmm.select_k is bayes_gmm.inference.select_k
    with pytest.raises(AttributeError, match="has no attribute 'fit_everything'"):
        bayes_gmm.fit_everything  # noqa: B018


IMPORTED_AFTER = """
import json, sys
{statement}
print(json.dumps(sorted(m for m in ("pymc", "pytensor", "numba", "sklearn") if m in sys.modules)))
"""


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("import bayes_gmm", []),
        ("from bayes_gmm import GaussianMixture, fit_em", ["numba", "sklearn"]),
    ],
)
def test_importing_the_package_imports_only_what_is_used(statement, expected):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")])}
    code = IMPORTED_AFTER.format(statement=statement)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == expected
