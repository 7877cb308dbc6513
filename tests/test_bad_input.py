"""A catalogue of bad and edge inputs, as a hostile but fair new user would try them (issue 13).

Every case asserts the exact outcome: the error's type and a fragment of its message (which names the
parameter, what was expected, what was given and a fix), or the documented behaviour with finite outputs.
Errors about the data or the arguments must come before any fitting: the cases replace EM and the samplers
with functions that fail the test if they are reached. No case samples, so the module runs in seconds.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_gmm import cli, datasets
from bayes_gmm._validation import check_fit_data
from bayes_gmm.em_baseline import _search, fit_em, search_models
from bayes_gmm.exceptions import IllConditionedCovarianceError
from bayes_gmm.inference import (
    _advi,
    _fit,
    co_clustering,
    compare_with_em,
    draw_responsibilities,
    fit_gmm,
    membership_probabilities,
    posterior_log_density,
    posterior_partition,
    select_k,
)
from bayes_gmm.inference._membership import nearest_components
from conftest import fake_fit

RNG = np.random.default_rng(13)
N = 200
A = np.concatenate([RNG.normal(0.0, 1.0, N // 2), RNG.normal(6.0, 1.0, N // 2)])
B = np.concatenate([RNG.normal(0.0, 1.0, N // 2), RNG.normal(-3.0, 1.0, N // 2)])
GOOD = np.column_stack([A, B])


def no_fitting(monkeypatch) -> None:
    """Make reaching EM or a sampler from fit_gmm fail the test: errors must come before them."""

    def fail(*args, **kwargs):
        pytest.fail("fitting started before the input was rejected")

    for name in ("fit_em", "run_nuts", "fit_advi", "fit_kernel_advi"):
        monkeypatch.setattr(_fit, name, fail)


# --- data: shape, type, values (fit_em and fit_gmm share these checks) ------------------------------------

masked = np.ma.masked_array(GOOD.copy(), mask=np.zeros(GOOD.shape, dtype=bool))
masked[5, 0] = 1e6  # the value a user hid; it must not become its own component
masked[5, 0] = np.ma.masked

DATA_ERRORS = {
    "nan": (
        np.where(np.arange(N)[:, None] == 3, np.nan, GOOD),
        ValueError,
        r"finite values; found NaN .* row 3",
    ),
    "inf": (
        np.where(np.arange(N)[:, None] == 7, np.inf, GOOD),
        ValueError,
        r"finite values; .* first at row 7",
    ),
    "one-d": (A, ValueError, r"must be 2-D .* X\.reshape\(-1, 1\)"),
    "three-d": (np.zeros((4, 2, 2)), ValueError, r"must be 2-D .* 3 dimension\(s\)"),
    "no-columns": (np.zeros((10, 0)), ValueError, r"at least one feature \(column\); got shape \(10, 0\)"),
    "none": (None, TypeError, r"got None\. Pass the data"),
    "ragged": ([[1.0, 2.0], [3.0]], TypeError, r"nested sequence .* Give every row the same length"),
    "strings": (np.array([["a", "b"], ["c", "d"]]), TypeError, r"cannot be converted to float"),
    "complex": (GOOD + 1j, TypeError, r"real-valued; got complex numbers"),
    "dataframe-text-column": (
        pd.DataFrame({"a": A, "name": ["x"] * N}),
        TypeError,
        r"only numeric columns; got non-numeric column\(s\) \['name'\]",
    ),
    "series": (pd.Series(A), ValueError, r"must be 2-D"),
    "dataframe-repeated-column": (
        pd.DataFrame(np.column_stack([A, B, A]), columns=["a", "b", "a"]),
        ValueError,
        r"distinct column names, one per feature; got the column\(s\) \['a'\] more than once .* Rename or drop",
    ),
    "masked-values": (
        masked,
        ValueError,
        r"masked array with 1 masked value\(s\) in 1 row\(s\) \(first: row 5\)",
    ),
    "huge-1e298": (GOOD * 1e298, ValueError, r"too large for float64 .* divide that column by 1e29\d"),
    "huge-negative": (np.column_stack([A, -1e150 * np.abs(B)]), ValueError, r"too large for float64"),
    "fewer-rows-than-k": (GOOD[:2], ValueError, r"2 sample\(s\) but at least 3 are needed"),
}


@pytest.mark.parametrize("fit", ["fit_em", "fit_gmm"])
@pytest.mark.parametrize(("X", "error", "message"), DATA_ERRORS.values(), ids=DATA_ERRORS.keys())
def test_bad_data_is_refused(monkeypatch, fit, X, error, message):
    no_fitting(monkeypatch)
    with pytest.raises(error, match=message):
        (fit_em if fit == "fit_em" else fit_gmm)(X, 3)


def test_masked_array_without_masked_values_is_plain_data():
    unmasked = np.ma.masked_array(GOOD, mask=False)
    assert fit_em(unmasked, 2, random_seed=0).log_likelihood == fit_em(GOOD, 2, random_seed=0).log_likelihood


# --- data a Bayesian mixture cannot fit: one clear error before sampling ------------------------------------

NOISE = RNG.normal(size=N)
DEGENERATE = {
    "collinear": (
        np.column_stack([A, 2 * A + 1]),
        "full",
        r"columns 0, 1 are linearly dependent .* Drop all but one",
    ),
    "collinear-tied": (np.column_stack([A, 3 - A]), "tied", r"columns 0, 1 are linearly dependent"),
    "near-collinear": (
        np.column_stack([A, 2 * A + 1e-8 * NOISE]),
        "full",
        r"linearly dependent .* within \d\.\de-\d\d of the data's spread",
    ),
    "sum-of-two-columns": (
        np.column_stack([A, B, A + B, NOISE]),
        "full",
        r"columns 0, 1, 2 are linearly dependent",
    ),
    "scales-1e-8-and-1e8": (
        np.column_stack([1e-8 * A, 1e8 * B]),
        "full",
        r"differ in scale by a factor of \d\.\de\+1[56] .* Standardise the columns",
    ),
    "scales-diag": (np.column_stack([1e-8 * A, 1e8 * B]), "diag", r"differ in scale by a factor"),
    "constant-column": (
        np.column_stack([A, np.full(N, 3.0)]),
        "full",
        r"column 1 is constant \(every value is 3\)",
    ),
    "constant-column-diag": (np.column_stack([np.full(N, -1.5), A]), "diag", r"column 0 is constant"),
    "tiny-scale": (
        GOOD * 1e-200,
        "full",
        r"varies on a scale of .*e-200, below 1e-100: .* multiply it by 1e200",
    ),
    "more-features-than-points": (
        RNG.normal(size=(12, 8)),
        "full",
        r"12 samples of 8 feature\(s\), too few for 2 component\(s\) .* d \+ 1 = 9 points per component",
    ),
    "more-features-than-points-tied": (RNG.normal(size=(8, 8)), "tied", r"K \+ d = 10 points"),
    "one-point-per-component-diag": (GOOD[:3], "diag", r"3 samples .* 2 points per component"),
    "few-distinct-points": (
        np.repeat(RNG.normal(size=(3, 2)), 40, axis=0),
        "full",
        r"only 3 distinct row\(s\) among 120, .* collapse onto repeated points",
    ),
    "few-distinct-points-spherical": (
        np.repeat(RNG.normal(size=(3, 2)), 40, axis=0),
        "spherical",
        r"only 3 distinct row\(s\)",
    ),
}


@pytest.mark.parametrize(("X", "covariance_type", "message"), DEGENERATE.values(), ids=DEGENERATE.keys())
def test_degenerate_data_fails_before_sampling(monkeypatch, X, covariance_type, message):
    no_fitting(monkeypatch)
    with pytest.raises(ValueError, match=message):
        fit_gmm(X, 2, covariance_type=covariance_type)


@pytest.mark.parametrize(
    "options", [{"backend": "nutpie"}, {"backend": "pymc"}, {"method": "advi"}, {"method": "fullrank_advi"}]
)
def test_collinear_data_fails_before_sampling_on_every_path(monkeypatch, options):
    no_fitting(monkeypatch)
    with pytest.raises(ValueError, match=r"linearly dependent"):
        fit_gmm(np.column_stack([A, 2 * A + 1]), 2, **options)


def test_dataframe_columns_are_named_in_the_message(monkeypatch):
    no_fitting(monkeypatch)
    table = pd.DataFrame({"height": A, "height_cm": 100 * A, "noise": NOISE})
    with pytest.raises(ValueError, match=r"columns 'height', 'height_cm' are linearly dependent"):
        fit_gmm(table, 2)


def test_select_k_refuses_collinear_data_before_sampling(monkeypatch):
    monkeypatch.setattr(_fit, "run_nuts", lambda *a, **k: pytest.fail("sampling started"))
    with pytest.raises(ValueError, match=r"linearly dependent"):
        select_k(np.column_stack([A, 2 * A + 1]), [1, 2], em_n_init=1)


def test_nearly_collinear_columns_warn_and_diagonal_covariances_accept_them():
    X = np.column_stack([A, 2 * A + 1e-3 * NOISE])  # condition number ~1e4: a fit is possible but slow
    with pytest.warns(
        UserWarning, match=r"columns 0, 1 are linearly dependent .* condition number \d\.\de\+0[34]"
    ):
        check_fit_data(X, 2, "full")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_fit_data(np.column_stack([A, 2 * A + 1]), 2, "diag")  # diagonal covariances stay proper
        check_fit_data(GOOD, 2, "full")  # ordinary data: silent


def test_mostly_repeated_rows_warn():
    X = np.repeat(RNG.normal(size=(20, 2)), 5, axis=0)
    with pytest.warns(UserWarning, match=r"only 20 distinct rows among 100"):
        check_fit_data(X, 2, "full")


def test_em_on_collinear_data_is_kept_proper_by_reg_covar():
    """EM has reg_covar, so it fits collinear columns; the outputs are finite and probabilities sum to one."""
    X = np.column_stack([A, 2 * A + 1])
    em = fit_em(X, 2, random_seed=0)
    assert np.isfinite(em.log_likelihood) and np.all(np.isfinite(em.covariances))
    proba = membership_probabilities(em, X)["probability"].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_em_warns_when_reg_covar_swamps_a_column():
    with pytest.warns(UserWarning, match=r"column 0 has variance .*e-1\d, below 10 x reg_covar \(1e-06\)"):
        fit_em(np.column_stack([1e-8 * A, B]), 2, n_init=1, random_seed=0)


# --- arguments ----------------------------------------------------------------------------------------------

ARGUMENT_ERRORS = {
    "advi-learning-rate-nan": (
        {"method": "advi", "advi_learning_rate": float("nan")},
        r"advi_learning_rate must be a finite number > 0; got nan",
    ),
    "advi-learning-rate-negative": (
        {"method": "advi", "advi_learning_rate": -0.01},
        r"advi_learning_rate must be .* > 0; got -0\.01",
    ),
    "advi-learning-rate-zero": (
        {"method": "fullrank_advi", "advi_learning_rate": 0},
        r"advi_learning_rate .* got 0\. Use e\.g\.",
    ),
    "advi-learning-rate-text": (
        {"method": "advi", "advi_learning_rate": "fast"},
        r"advi_learning_rate .* got 'fast'",
    ),
    "advi-max-iter": ({"method": "advi", "advi_max_iter": 0}, r"advi_max_iter must be an integer >= 1"),
    "advi-tolerance": (
        {"method": "advi", "advi_tolerance": -1.0},
        r"advi_tolerance must be a finite number >= 0",
    ),
    "advi-restarts": ({"method": "advi", "advi_restarts": 0}, r"advi_restarts must be an integer >= 1"),
    "draws": ({"draws": -5}, r"draws must be an integer >= 1; got -5"),
    "chains": ({"chains": 0}, r"chains must be an integer >= 1"),
    "tune": ({"tune": -1}, r"tune must be an integer >= 1"),
    "jitter": ({"jitter": float("inf")}, r"jitter must be a finite number >= 0"),
    "target-accept": ({"target_accept": 1.5}, r"target_accept must be in \(0, 1\)"),
    "covariance-type": ({"covariance_type": "banana"}, r"covariance_type must be one of .* got 'banana'"),
    "method": ({"method": "gibbs"}, r"method must be one of .* got 'gibbs'"),
    "backend": ({"backend": "stan"}, r"backend must be 'auto' or one of"),
    "minibatch-with-nuts": ({"minibatch_size": 50}, r"minibatch_size only applies to ADVI"),
    "nuts-backend-with-advi": (
        {"method": "advi", "backend": "nutpie"},
        r"backend for ADVI must be 'auto' or one of \('kernel', 'pymc'\); got 'nutpie' .* Use backend='auto'",
    ),
    "kernel-backend-with-nuts": ({"backend": "kernel"}, r"backend must be 'auto' or one of .* got 'kernel'"),
}


@pytest.mark.parametrize(("options", "message"), ARGUMENT_ERRORS.values(), ids=ARGUMENT_ERRORS.keys())
def test_bad_arguments_are_refused_before_fitting(monkeypatch, options, message):
    no_fitting(monkeypatch)
    with pytest.raises(ValueError, match=message):
        fit_gmm(GOOD, 2, **options)


@pytest.mark.parametrize(
    ("k", "error", "message"),
    [
        (0, ValueError, r"n_components must be >= 1"),
        (2.5, TypeError, r"positive integer; got 2\.5"),
        (True, TypeError, r"got True"),
    ],
)
def test_bad_number_of_components(monkeypatch, k, error, message):
    no_fitting(monkeypatch)
    with pytest.raises(error, match=message):
        fit_gmm(GOOD, k)


@pytest.mark.parametrize(
    ("exception", "error", "message"),
    [
        (
            FloatingPointError("NaN occurred in optimization."),
            ValueError,
            r"ADVI diverged: the ELBO became NaN .* Lower advi_learning_rate \(e\.g\. 0\.001\)",
        ),
        (
            ZeroDivisionError("division by zero"),
            IllConditionedCovarianceError,
            r"zero standard deviation .* Lower advi_learning_rate",
        ),
    ],
    ids=["nan-elbo", "zero-division"],
)
def test_advi_failures_become_messages(monkeypatch, exception, error, message):
    """The last line of defence: what PyMC's optimiser or the likelihood kernel raise mid-fit is explained."""

    def failing_fit(*args, **kwargs):
        raise exception

    monkeypatch.setattr(_advi.pm, "fit", failing_fit)
    with pytest.raises(error, match=message):
        _advi.run_advi(
            None,
            [{}],
            method="advi",
            max_iter=10,
            tolerance=1e-4,
            learning_rate=0.01,
            random_seed=0,
            progressbar=False,
        )


# --- membership and the other posterior summaries -----------------------------------------------------------


TWO = fake_fit([0.5, 0.5], [[0.0, 0.0], [10.0, 0.0]], [np.eye(2), 100 * np.eye(2)], GOOD)


@pytest.fixture(scope="module")
def faithful_em():
    return fit_em(datasets.load_faithful(), 2, n_init=1, random_seed=0)


NOT_A_FIT = {
    "none": (
        None,
        TypeError,
        r"fit must be a Bayesian fit from fit_gmm .* got None\. Pass what fit_gmm returned",
    ),
    "string": ("posterior.nc", TypeError, r"got a str: 'posterior\.nc'"),
    "number": (3, TypeError, r"got a int: 3"),
    "dict": ({"posterior": {}}, TypeError, r"got a dict"),
    "empty-datatree": (
        xr.DataTree(),
        ValueError,
        r"got a DataTree without a posterior group \(groups: \[\]\)",
    ),
    "posterior-without-covariances": (
        xr.DataTree.from_dict({"posterior": TWO["posterior"].to_dataset().drop_vars("covariances")}),
        ValueError,
        r"got a DataTree whose posterior lacks \['covariances'\]",
    ),
}


@pytest.mark.parametrize(
    "function",
    [
        membership_probabilities,
        posterior_log_density,
        co_clustering,
        draw_responsibilities,
        posterior_partition,
    ],
)
@pytest.mark.parametrize(("fit", "error", "message"), NOT_A_FIT.values(), ids=NOT_A_FIT.keys())
def test_summaries_of_something_that_is_not_a_fit(function, fit, error, message):
    with pytest.raises(error, match=message):
        function(fit, GOOD)


def test_far_point_goes_to_the_nearest_component_in_mahalanobis_terms():
    """Component 1 is wider, so a far point belongs to it, though it is equally far from both in metres."""
    far = np.array([[1e6, 0.0], [-1e6, 0.0], [5.0, 1e8]])
    membership = membership_probabilities(TWO, far)
    np.testing.assert_array_equal(membership["probability"].to_numpy(), [[0.0, 1.0]] * 3)
    assert np.all(np.isfinite(membership["entropy"])) and list(membership["most_probable"]) == [1, 1, 1]


def test_densities_that_underflow_everywhere_still_give_probabilities():
    """Every component's density underflows to 0 (|y|^2 overflows): log space plus the nearest component."""
    tiny = fake_fit([0.5, 0.5], [[0.0, 0.0], [10.0, 0.0]], [1e-150 * np.eye(2), 1e-140 * np.eye(2)], GOOD[:5])
    far = np.array([[1e90, 0.0], [0.0, -1e90]])
    membership = membership_probabilities(tiny, far)
    np.testing.assert_array_equal(membership["probability"].to_numpy(), [[0.0, 1.0], [0.0, 1.0]])
    for name in ("probability_lower", "probability_upper", "max_probability", "entropy"):
        assert np.all(np.isfinite(membership[name].to_numpy())), name
    assert np.all(np.isfinite(co_clustering(tiny, far).to_numpy()))
    assert not np.any(np.isnan(posterior_log_density(tiny, far)))


def test_em_far_point_is_finite_and_nearest(faithful_em):
    far = np.array([[1e6, 1e6], [-50.0, 3000.0]])
    proba = membership_probabilities(faithful_em, far)["probability"].to_numpy()
    inverse = np.linalg.inv(faithful_em.covariances)
    distance = np.einsum(
        "nkd,kde,nke->nk", far[:, None] - faithful_em.means, inverse, far[:, None] - faithful_em.means
    )
    np.testing.assert_array_equal(proba.argmax(axis=1), distance.argmin(axis=1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_em_densities_that_underflow_everywhere(faithful_em):
    tiny = dataclasses.replace(
        faithful_em,
        covariance_type="spherical",
        covariances=np.array([1e-150, 1e-140]),
        precisions_cholesky=np.array([1e75, 1e70]),
    )
    proba = membership_probabilities(tiny, np.array([[1e90, 0.0]]))["probability"].to_numpy()
    np.testing.assert_array_equal(proba, [[0.0, 1.0]])  # the wider component


def test_nearest_components_share_ties_and_skip_empty_components():
    points = np.array([[0.0, 5.0]])
    means = np.array([[[0.0, 0.0], [0.0, 10.0], [0.0, 5.0]]])
    covariances = np.broadcast_to(np.eye(2), (1, 3, 2, 2))
    np.testing.assert_array_equal(
        nearest_components(points, np.array([[0.5, 0.5, 0.0]]), means, covariances), [[0.5, 0.5, 0.0]]
    )


MEMBERSHIP_ARGUMENTS = {
    "interval-prob-above-one": (
        {"interval_prob": 1.5},
        ValueError,
        r"interval_prob must be in \(0, 1\); got 1\.5",
    ),
    "interval-prob-nan": (
        {"interval_prob": float("nan")},
        ValueError,
        r"interval_prob must be in \(0, 1\); got nan",
    ),
    "interval-prob-text": (
        {"interval_prob": "0.9"},
        ValueError,
        r"interval_prob must be in \(0, 1\); got '0\.9'",
    ),
    "max-draws-zero": ({"max_draws": 0}, ValueError, r"max_draws must be an integer >= 1"),
    "wrong-feature-count": (
        {"X": np.zeros((3, 3))},
        ValueError,
        r"X has 3 feature\(s\) but the model was fitted on 2",
    ),
    "nan-point": ({"X": np.array([[0.0, np.nan]])}, ValueError, r"finite values"),
    "masked-point": (
        {"X": np.ma.masked_array([[0.0, 1.0]], mask=[[True, False]])},
        ValueError,
        r"masked array",
    ),
    "huge-point": ({"X": np.array([[1e200, 0.0]])}, ValueError, r"too large for float64"),
    "dataframe-for-an-array-fit": (
        {"X": pd.DataFrame({"x0": [1.0], "y": [2.0]})},
        ValueError,
        None,  # a fit from an array matches DataFrame columns by position: accepted
    ),
}


@pytest.mark.parametrize(
    ("options", "error", "message"), MEMBERSHIP_ARGUMENTS.values(), ids=MEMBERSHIP_ARGUMENTS.keys()
)
def test_membership_arguments(options, error, message):
    if message is None:
        assert np.all(np.isfinite(membership_probabilities(TWO, **options)["probability"].to_numpy()))
        return
    with pytest.raises(error, match=message):
        membership_probabilities(TWO, **options)


def test_em_membership_without_points(faithful_em):
    with pytest.raises(
        ValueError, match=r"X is required for an EM fit: .* membership_probabilities\(em, X\)"
    ):
        membership_probabilities(faithful_em)


def test_fit_without_observed_data_needs_points():
    bare = xr.DataTree.from_dict({"posterior": TWO["posterior"].to_dataset()})
    with pytest.raises(ValueError, match=r"the fit has no observed_data; pass the points as X"):
        membership_probabilities(bare)


# --- compare_with_em and search_models: their arguments, checked before any work ----------------------------

OTHER_DIMS = xr.DataTree.from_dict(
    {"posterior": TWO["posterior"].to_dataset().rename({"component": "cluster"})}
)
EM_TWO = "the EM fit of GOOD"  # replaced by the fixture good_em in the tests
COMPARE_ERRORS = {
    "empty-datatree": (
        (xr.DataTree(), EM_TWO),
        ValueError,
        r"idata must be a Bayesian fit from fit_gmm .* got a DataTree without a posterior group \(groups: \[\]\)",
    ),
    "em-not-a-fit": (
        (TWO, "x"),
        TypeError,
        r"em must be an EMResult from fit_em .* got a str: 'x'\. Pass it, e\.g\. em = fit_em\(X, k\)",
    ),
    "em-none": ((TWO, None), TypeError, r"em must be an EMResult .* got None"),
    "swapped": (
        (EM_TWO, TWO),
        TypeError,
        r"Bayesian fit first and the EM fit second; got an EMResult as idata .* compare_with_em\(idata, em\)",
    ),
    "idata-a-string": (
        ("posterior.nc", EM_TWO),
        TypeError,
        r"idata must be a Bayesian fit .* got a str.* e\.g\. compare_with_em\(fit_gmm\(X, k, em=em\), em\)\.",
    ),
    "no-component-dim": (
        (OTHER_DIMS, EM_TWO),
        ValueError,
        r"idata must be .* posterior variables have other dims than fit_gmm gives them \(weights has "
        r"\['chain', 'draw', 'cluster'\], not \['chain', 'draw', 'component'\]",
    ),
    "other-feature-names": (
        (TWO, "the EM fit of columns a, b"),
        None,  # the posterior's features are x0, x1 (a fit of an array): compared by position, no error
        None,
    ),
}


@pytest.fixture(scope="module")
def good_em():
    return fit_em(GOOD, 2, n_init=1, random_seed=0)


@pytest.mark.parametrize(("args", "error", "message"), COMPARE_ERRORS.values(), ids=COMPARE_ERRORS.keys())
def test_compare_with_em_arguments(good_em, args, error, message):
    fits = {
        EM_TWO: good_em,
        "the EM fit of columns a, b": dataclasses.replace(good_em, feature_names=("a", "b")),
    }
    args = [fits.get(arg, arg) if isinstance(arg, str) else arg for arg in args]
    if error is None:
        assert np.all(np.isfinite(compare_with_em(*args)["em"]))
        return
    with pytest.raises(error, match=message):
        compare_with_em(*args)


def test_compare_with_em_refuses_an_em_fit_of_other_columns(good_em):
    named = TWO.copy()
    named["posterior"] = (
        TWO["posterior"].to_dataset().assign_coords(feature=["a", "b"], feature_cov=["a", "b"])
    )
    table = compare_with_em(named, dataclasses.replace(good_em, feature_names=("a", "b")))
    assert "means[1, a]" in set(table["parameter"])
    with pytest.raises(
        ValueError, match=r"em must have the posterior's features \['a', 'b'\], in that order; got "
    ):
        compare_with_em(named, dataclasses.replace(good_em, feature_names=("b", "a")))


def no_search(monkeypatch) -> None:
    def fail(*args, **kwargs):
        pytest.fail("search_models fitted before the arguments were checked")

    monkeypatch.setattr(_search, "_quiet_fit", fail)


@pytest.mark.parametrize(
    ("n_components", "message"),
    [
        (
            2.0,
            r"n_components must be an int K \(the fits K = 1\.\.K\) or an iterable of ints; got 2\.0 of type float",
        ),
        ("3", r"an iterable of ints; got '3' of type str\. Pass e\.g\. n_components=3"),
        ([1, 2.5], r"n_components must be an integer >= 1; got 2\.5"),
        (0, r"n_components must be an integer >= 1; got 0"),
    ],
    ids=["float", "string", "float-in-list", "zero"],
)
def test_search_models_refuses_bad_numbers_of_components(monkeypatch, n_components, message):
    no_search(monkeypatch)
    with pytest.raises((TypeError, ValueError), match=message):
        search_models(GOOD, n_components)


def test_search_models_takes_one_model_name_as_one_model():
    one = search_models(GOOD, [1, 2], "VVV", n_init=1, random_seed=0)
    assert list(one.table.index) == [("VVV", 1), ("VVV", 2)]
    listed = search_models(GOOD, [1, 2], ["VVV"], n_init=1, random_seed=0)
    pd.testing.assert_frame_equal(one.table, listed.table)


def test_search_models_refuses_an_unknown_model_name_before_fitting(monkeypatch):
    no_search(monkeypatch)
    with pytest.raises(ValueError, match=r"covariance_type must be one of .* got 'VVX'"):
        search_models(GOOD, 2, "VVX")


# --- the command line: one line, exit status 2, nothing fitted, nothing written -----------------------------


def write_table(tmp_path: Path, columns: dict) -> Path:
    path = tmp_path / "data.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def assert_cli_error(capsys, status: int, pattern: str) -> None:
    captured = capsys.readouterr()
    assert status == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayes-gmm: error: "), captured.err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def cli_no_fitting(monkeypatch):
    def fail(*args, **kwargs):
        pytest.fail("fitting started before the input was rejected")

    for name in ("fit_em", "fit_gmm", "select_k"):
        monkeypatch.setattr(cli, name, fail)


CLI_OPTION_ERRORS = {
    "seed-negative": (["--seed", "-1"], r"--seed must be an integer >= 0; got -1\. Use e\.g\. --seed 0"),
    "draws-zero": (["--draws", "0"], r"--draws must be an integer >= 1; got 0"),
    "tune-negative": (["--tune", "-3"], r"--tune must be an integer >= 1"),
    "chains-zero": (["--chains", "0"], r"--chains must be an integer >= 1"),
    "n-init-zero": (["--n-init", "0"], r"--n-init must be an integer >= 1"),
    "components-zero": (["-k", "0"], r"--components \(-k\) must be an integer >= 1"),
    "columns-repeated": (
        ["--columns", "waiting,waiting"],
        r"--columns names \['waiting'\] more than once; .* --columns waiting$",
    ),
    "columns-empty": (["--columns", " , "], r"--columns names no column"),
    "columns-unknown": (["--columns", "eruptions,height"], r"\['height'\] not in the data"),
    "nuts-backend-with-advi": (
        ["--method", "advi", "--backend", "nutpie"],
        r"--backend nutpie runs NUTS; --method advi runs on kernel or pymc\. Use --backend auto$",
    ),
    "advi-backend-with-nuts": (["--backend", "kernel"], r"--backend kernel runs ADVI; NUTS runs on .* auto$"),
}


@pytest.mark.parametrize(("argv", "message"), CLI_OPTION_ERRORS.values(), ids=CLI_OPTION_ERRORS.keys())
def test_cli_option_errors(tmp_path, capsys, cli_no_fitting, argv, message):
    out = tmp_path / "out"
    assert_cli_error(capsys, cli.main(["fit", "--demo", "--quiet", *argv, "--out", str(out)]), message)
    assert not out.exists()


CLI_DATA_ERRORS = {
    "collinear": ({"a": A, "a_twice": 2 * A + 1}, [], r"columns 'a', 'a_twice' are linearly dependent"),
    "collinear-advi": ({"a": A, "a_twice": 2 * A + 1}, ["--method", "advi"], r"linearly dependent"),
    "scales": ({"small": 1e-8 * A, "large": 1e8 * B}, [], r"differ in scale by a factor of \d\.\de\+1[56]"),
    "constant": ({"a": A, "unit": np.ones(N)}, [], r"column 'unit' is constant"),
    "few-distinct": (
        {"a": np.repeat([1.0, 2.0, 3.0], 40), "b": np.repeat([0.0, 5.0, 1.0], 40)},
        [],
        r"only 3 distinct row",
    ),
    "more-features-than-points": (
        {f"f{j}": RNG.normal(size=12) for j in range(8)},
        [],
        r"12 samples of 8 feature",
    ),
    "huge-em": ({"a": A * 1e298, "b": B}, ["--method", "em"], r"too large for float64"),
    "select-k-collinear": ({"a": A, "b": -A}, ["select-k", "--components", "1,2"], r"linearly dependent"),
    "select-k-too-many-k": (
        {f"f{j}": RNG.normal(size=30) for j in range(4)},
        ["select-k", "--components", "1-8"],
        r"30 samples of 4 feature\(s\), too few for 8 component",
    ),
}


@pytest.mark.parametrize(("columns", "argv", "message"), CLI_DATA_ERRORS.values(), ids=CLI_DATA_ERRORS.keys())
def test_cli_data_errors_come_before_fitting(tmp_path, capsys, cli_no_fitting, columns, argv, message):
    command = argv[:1] if argv[:1] == ["select-k"] else ["fit"]
    options = argv[1:] if command == ["select-k"] else argv
    path = write_table(tmp_path, columns)
    out = tmp_path / "out"
    assert_cli_error(capsys, cli.main([*command, str(path), "--quiet", *options, "--out", str(out)]), message)
    assert not out.exists()


@pytest.mark.parametrize(
    ("make_out", "message"),
    [
        (lambda tmp: tmp / "afile", r"--out .*afile is an existing file, not a folder"),
        (
            lambda tmp: tmp / "afile" / "sub",
            r"--out .*afile/sub: .*afile is a file, so no folder can be made in it",
        ),
        pytest.param(
            lambda tmp: Path("/proc/bayes-gmm-results"),
            r"--out /proc/bayes-gmm-results: cannot write in /proc",
            marks=pytest.mark.skipif(not Path("/proc/self").exists(), reason="Linux /proc"),
        ),
        (lambda tmp: Path("."), r"--out \. is the current folder or one above it"),
    ],
    ids=["existing-file", "subfolder-of-a-file", "under-proc", "current-folder"],
)
def test_cli_unusable_out_is_refused_before_fitting(
    tmp_path, monkeypatch, capsys, cli_no_fitting, make_out, message
):
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert_cli_error(
        capsys, cli.main(["fit", "--demo", "--quiet", "--out", str(make_out(tmp_path))]), message
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize(
    ("exception", "pattern"),
    [
        (
            ZeroDivisionError("division by zero"),
            r"^bayes-gmm: error: the fit reached a covariance with a zero standard deviation",
        ),
        (
            np.linalg.LinAlgError("Matrix is not positive definite"),
            r"^bayes-gmm: error: Matrix is not positive definite$",
        ),
        (
            RuntimeError("chain 2 failed\n  in the sampler"),
            r"^bayes-gmm: internal error \(RuntimeError: chain 2 failed in the sampler\)\. Please report it",
        ),
    ],
    ids=["zero-division", "linalg", "unexpected"],
)
def test_cli_turns_failures_inside_a_fit_into_one_line(tmp_path, monkeypatch, capsys, exception, pattern):
    def failing_fit(*args, **kwargs):
        raise exception

    monkeypatch.setattr(cli, "fit_gmm", failing_fit)
    monkeypatch.delenv(cli.TRACEBACK_ENV, raising=False)
    out = tmp_path / "out"
    status = cli.main(["fit", "--demo", "--quiet", "--n-init", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), captured.err
    assert not out.exists()


def test_cli_em_fit_of_collinear_columns_succeeds(tmp_path, capsys):
    """EM keeps covariances proper with reg_covar: the documented way to fit such data, with finite output."""
    path = write_table(tmp_path, {"a": A, "a_twice": 2 * A + 1})
    out = tmp_path / "out"
    assert (
        cli.main(
            ["fit", str(path), "--method", "em", "--n-init", "1", "--no-plots", "--quiet", "--out", str(out)]
        )
        == 0
    )
    assignments = pd.read_csv(out / "assignments.csv")
    assert np.all(np.isfinite(assignments.to_numpy()))
    np.testing.assert_allclose(assignments[["p_component_0", "p_component_1"]].sum(axis=1), 1.0)


# --- the command line's CSV reading: separators, cells that are not numbers, IDs and labels ----------------

FAITHFUL = datasets.load_faithful()


def faithful_with(tmp_path: Path, row: int, column: str, text: str, **to_csv) -> Path:
    table = FAITHFUL.astype(object)
    table.loc[row, column] = text
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False, **to_csv)
    return path


CLI_CELL_ERRORS = {
    # the table's row 16 (pandas counts from 0) is line 18 of the file
    "typo": (
        lambda tmp: faithful_with(tmp, 16, "waiting", "79x"),
        [],
        r"column 'waiting' holds numbers but on line 18 it has '79x', which is not a number; correct the "
        r"file, or leave the column out with --columns$",
    ),
    "typo-after-blank-and-comment-lines": (  # the line number counts them (pandas' row number does not)
        lambda tmp: insert_lines(
            faithful_with(tmp, 16, "waiting", "79x"), {1: "# exported today", 5: "", 6: ""}
        ),
        [],
        r"column 'waiting' holds numbers but on line 21 it has '79x'",
    ),
    "typo-named-in-columns": (
        lambda tmp: faithful_with(tmp, 0, "eruptions", "3.6.1"),
        ["--columns", "waiting,eruptions"],
        r"column 'eruptions' holds numbers but on line 2 it has '3\.6\.1'",
    ),
    "semicolon-file-typo": (
        lambda tmp: faithful_with(tmp, 271, "eruptions", "n/a?", sep=";"),
        [],
        r"column 'eruptions' holds numbers but on line 273 it has 'n/a\?'",
    ),
    "decimal-comma": (
        lambda tmp: write_table_as(tmp, FAITHFUL, sep=";", decimal=","),
        [],
        r"column 'eruptions' holds numbers written with a decimal comma \('3,6' on line 2\); "
        r"give --decimal ,$",
    ),
    "points-with-decimal-comma-option": (
        lambda tmp: write_table_as(tmp, FAITHFUL, sep=";"),
        ["--decimal", ","],
        r"column 'eruptions' holds a number written with a decimal point \('3\.6' on line 2\) where "
        r"--decimal is ','; correct the file, or leave out --decimal if it writes points$",
    ),
    "point-in-a-decimal-comma-file": (  # 3.600 might mean 3600: a point is no decimal point with --decimal ,
        lambda tmp: replace_line(write_table_as(tmp, FAITHFUL, sep=";", decimal=","), 5, "3.600;74"),
        ["--decimal", ","],
        r"column 'eruptions' holds a number written with a decimal point \('3\.600' on line 6\) .*; or, if "
        r"'\.' groups digits by three, give --thousands \.$",
    ),
    "text-column-named": (
        lambda tmp: write_table_as(tmp, FAITHFUL.assign(name=[f"e{i}" for i in range(272)])),
        ["--columns", "eruptions,name"],
        r"column\(s\) \['name'\] are not numeric \(text such as 'e0', not numbers\)",
    ),
    "only-ids-and-text": (
        lambda tmp: write_table_as(tmp, pd.DataFrame({"id": range(1, 11), "name": list("abcdefghij")})),
        [],
        r"the data has no numeric columns \(left out: id \(its name marks an ID .*\); name \(text such as 'a', "
        r"not numbers\)\); choose columns with --columns",
    ),
    "sep-too-long": (
        lambda tmp: write_table_as(tmp, FAITHFUL),
        ["--sep", ";;"],
        r"--sep must be one character",
    ),
    "decimal-letter": (
        lambda tmp: write_table_as(tmp, FAITHFUL),
        ["--decimal", "d"],
        r"--decimal must be one",
    ),
    "decimal-is-sep": (  # a comma-separated file of points: --decimal , meets the points
        lambda tmp: write_table_as(tmp, FAITHFUL),
        ["--decimal", ","],
        r"column 'eruptions' holds a number written with a decimal point \('3\.6' on line 2\) where "
        r"--decimal is ','",
    ),
    "footer-line": (
        lambda tmp: insert_lines(write_table_as(tmp, FAITHFUL, sep=";"), {273: "Total"}),
        [],
        r"data\.csv: line 274 has 1 field where the header \(line 1\) has 2 fields \(separator ';', "
        r"detected\); correct that line, or give the separator with --sep$",
    ),
    "extra-field-past-the-sniffed-lines": (  # pandas' index_col=False would drop the field silently
        lambda tmp: replace_line(write_table_as(tmp, FAITHFUL), 200, "3.5,80,7"),
        [],
        r"line 201 has 3 fields where the header \(line 1\) has 2 fields \(separator ',', detected\)",
    ),
    "extra-field-on-some-lines": (
        lambda tmp: replace_line(write_table_as(tmp, FAITHFUL), 1, "3.6,79,"),
        ["--sep", ","],
        r"line 3 has 2 fields where line 2 has 3 fields, one more than the header \(line 1\) "
        r"\(separator ',', --sep\)",
    ),
    "one-column-of-decimal-commas": (  # read as row names 1, 3, 5 and a = 5, 5, 25 before
        lambda tmp: write_text(
            tmp, "eruptions\n" + "".join(f"{x:g}\n".replace(".", ",") for x in FAITHFUL.eruptions)
        ),
        [],
        r"data\.csv is one column of numbers written with a decimal comma \('3,6' on line 2\); "
        r"give --decimal ,$",
    ),
    "header-only": (
        lambda tmp: write_table_as(tmp, FAITHFUL.iloc[:0]),
        [],
        r"data\.csv has no data rows: only a header \(line 1\)$",
    ),
    "inf-cell": (
        lambda tmp: faithful_with(tmp, 3, "waiting", "inf"),
        [],
        r"column 'waiting' holds inf on line 5, which is not a finite number; correct the file, or leave the "
        r"column out with --columns$",
    ),
    "thousands-grouped": (
        lambda tmp: write_table_as(
            tmp, FAITHFUL.assign(waiting=[f"{1000 * w:,.1f}" for w in FAITHFUL.waiting])
        ),
        [],
        r"column 'waiting' holds numbers with digits grouped by ',' \('79,000\.0' on line 2\); "
        r"give --thousands ,$",
    ),
    "thousands-grouped-decimal-comma": (
        lambda tmp: write_table_as(
            tmp,
            FAITHFUL.assign(
                waiting=[f"{1000 * w:,.1f}".translate(str.maketrans(",.", ".,")) for w in FAITHFUL.waiting]
            ),
            sep=";",
            decimal=",",
        ),
        ["--decimal", ","],
        r"column 'waiting' holds numbers with digits grouped by '\.' \('79\.000,0' on line 2\); "
        r"give --thousands \.$",
    ),
    "thousands-is-the-decimal": (
        lambda tmp: write_table_as(tmp, FAITHFUL),
        ["--thousands", "."],
        r"--thousands must be one of , \. ' space, not the decimal character '\.'; got '\.'",
    ),
}


def write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return path


def insert_lines(path: Path, lines: dict[int, str]) -> Path:
    """`path` with each text put before that line (counted from 0 in the original file)."""
    old = path.read_text(encoding="utf-8").splitlines()
    new = [text for i, line in enumerate(old) for text in ([lines[i]] if i in lines else []) + [line]]
    new += [lines[i] for i in sorted(lines) if i >= len(old)]
    path.write_text("\n".join(new) + "\n", encoding="utf-8")
    return path


def replace_line(path: Path, row: int, text: str) -> Path:
    """Data row `row` (line row + 1) of the file replaced by `text`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[row] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_table_as(tmp_path: Path, table: pd.DataFrame, **to_csv) -> Path:
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False, **to_csv)
    return path


@pytest.mark.parametrize(
    ("make_csv", "argv", "message"), CLI_CELL_ERRORS.values(), ids=CLI_CELL_ERRORS.keys()
)
@pytest.mark.parametrize("command", ["fit", "select-k"])
def test_cli_csv_errors_come_before_fitting(
    tmp_path, capsys, cli_no_fitting, command, make_csv, argv, message
):
    out = tmp_path / "out"
    status = cli.main([command, str(make_csv(tmp_path)), "--quiet", *argv, "--out", str(out)])
    assert_cli_error(capsys, status, message)
    assert not out.exists()
