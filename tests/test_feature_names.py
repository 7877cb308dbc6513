"""Columns by name wherever a fit meets new data: EM results keep their feature names, DataFrames are matched
to them by column name (any order), missing, unknown and repeated columns are refused with their names, and
the rows of a DataFrame keep their index labels in the membership summaries."""

from __future__ import annotations

import dataclasses
import warnings

import dask.array as da  # the test extra installs Dask: a missing one fails here, not skips
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from bayes_gmm import datasets
from bayes_gmm.em_baseline import fit_em, search_models
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import co_clustering, membership_probabilities, posterior_log_density
from conftest import fake_fit

FAITHFUL = datasets.load_faithful()  # columns eruptions, waiting
SWAPPED = FAITHFUL[["waiting", "eruptions"]]
NAMES = ("eruptions", "waiting")


@pytest.fixture(scope="module")
def em():
    return fit_em(FAITHFUL, 2, n_init=1, random_seed=0)


def test_em_keeps_the_column_names_and_stays_read_only(em):
    assert em.feature_names == NAMES
    assert fit_em(FAITHFUL.to_numpy(), 2, n_init=1, random_seed=0).feature_names is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        em.feature_names = ("a", "b")
    with pytest.raises(
        ValueError, match=r"feature_names must name the 2 features .* got 1 name\(s\) \['a'\]"
    ):
        dataclasses.replace(em, feature_names=("a",))


def test_a_dataframe_in_another_column_order_gives_the_same_predictions(em):
    # By position, the swapped columns would move many points to the other component: the order matters.
    assert np.mean(em.predict(SWAPPED.to_numpy()) != em.predict(FAITHFUL)) > 0.1
    np.testing.assert_array_equal(em.predict(SWAPPED), em.predict(FAITHFUL))
    for method in ("predict_proba", "score_samples"):
        np.testing.assert_array_equal(getattr(em, method)(SWAPPED), getattr(em, method)(FAITHFUL))
    for method in ("score", "bic", "aic", "icl"):
        assert getattr(em, method)(SWAPPED) == getattr(em, method)(FAITHFUL), method
    assert em.bic(SWAPPED) == pytest.approx(em.bic())  # the training data, given in another order


def test_an_array_of_the_right_width_is_taken_as_it_is(em):
    np.testing.assert_array_equal(em.predict(FAITHFUL.to_numpy()), em.predict(FAITHFUL))
    np.testing.assert_array_equal(em.predict(FAITHFUL.to_numpy().tolist()), em.predict(FAITHFUL))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (FAITHFUL.rename(columns={"waiting": "wait"}), r"\(missing \['waiting'\], unknown \['wait'\]\)"),
        (
            FAITHFUL.assign(year=2020.0),
            r"got columns \['eruptions', 'waiting', 'year'\] \(unknown \['year'\]\)",
        ),
        (FAITHFUL[["waiting"]], r"\(missing \['eruptions'\]\)\. Select or rename the columns"),
    ],
    ids=["renamed", "extra", "missing"],
)
def test_missing_and_unknown_columns_are_named(em, frame, message):
    for method in (em.predict, em.predict_proba, em.score_samples, em.score, em.bic, em.icl):
        with pytest.raises(
            ValueError, match=r"X must have the fit's feature columns \['eruptions', 'waiting'\]"
        ):
            method(frame)
    with pytest.raises(ValueError, match=message):
        em.predict(frame)
    with pytest.raises(ValueError, match=message):
        membership_probabilities(em, frame)


def test_repeated_column_names_are_refused_with_their_names(em):
    repeated = pd.concat([FAITHFUL, FAITHFUL[["waiting"]]], axis=1)
    message = r"X must have distinct column names.*\['waiting'\] more than once.*Rename or drop the repeated"
    for call in (
        lambda: fit_em(repeated, 2),
        lambda: em.predict(repeated),
        lambda: search_models(repeated, 2),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_a_search_keeps_the_names_in_its_fits():
    search = search_models(FAITHFUL, [2], ["VVV"], n_init=1, random_seed=0)
    best = search.best_fit()
    assert best.feature_names == NAMES
    np.testing.assert_array_equal(best.predict(SWAPPED), best.predict(FAITHFUL))


@pytest.mark.parametrize("init_sample_size", [100, 1000], ids=["sample-then-all-rows", "all-rows-in-memory"])
def test_a_dask_dataframe_fit_keeps_the_names(init_sample_size):
    frame = dd.from_pandas(FAITHFUL, npartitions=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = fit_em(frame, 2, n_init=1, random_seed=0, init_sample_size=init_sample_size)
        unnamed = fit_em(da.from_array(FAITHFUL.to_numpy(), chunks=100), 2, n_init=1, random_seed=0)
    assert fit.feature_names == NAMES and unnamed.feature_names is None
    np.testing.assert_array_equal(fit.predict(SWAPPED), fit.predict(FAITHFUL))


# --- membership: the rows of a DataFrame keep their labels ----------------------------------------------------


def test_membership_of_a_dataframe_keeps_its_index(em):
    rows = SWAPPED.iloc[[5, 1, 7]].set_axis(["day 5", "day 1", "day 7"])
    # A Bayesian fit of the faithful data whose every draw is the EM estimate.
    bayesian = fake_fit(em.weights, em.means, em.full_covariances(), FAITHFUL, feature_names=NAMES)
    for fit in (em, bayesian):
        membership = membership_probabilities(fit, rows)
        assert list(membership["obs_id"].to_numpy()) == ["day 5", "day 1", "day 7"]
        np.testing.assert_allclose(
            membership["probability"].sel(obs_id="day 1").to_numpy(), em.predict_proba(FAITHFUL.iloc[[1]])[0]
        )
        matrix = co_clustering(fit, rows)
        assert list(matrix["obs_id"].to_numpy()) == list(matrix["obs_id_2"].to_numpy()) == list(rows.index)
        np.testing.assert_allclose(
            posterior_log_density(fit, rows), em.score_samples(FAITHFUL.iloc[[5, 1, 7]])
        )
    unlabelled = membership_probabilities(em, rows.to_numpy()[:, ::-1])  # an array: rows numbered 0, 1, ...
    assert list(unlabelled["obs_id"].to_numpy()) == [0, 1, 2]
