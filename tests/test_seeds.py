"""One seed convention: every public random entry point takes None, an int, a SeedSequence or a Generator
(read by ``bayes_gmm._validation.seed_sequence``), gives the same result for the same seed and another for
another seed, and refuses anything else before any work.

fit_gmm, select_k, fit_sparse_gmm and fit_coreset_gmm are checked up to the seeds they hand on (their EM fit
or Bayesian fit is replaced by a recorder), so no model is compiled or sampled here.
"""

from __future__ import annotations

import warnings

import dask.array as da  # the test extra installs Dask: a missing one fails here, not skips
import numpy as np
import pytest

from bayes_gmm.coreset import lightweight_coreset
from bayes_gmm.datasets import elongated_clusters
from bayes_gmm.em_baseline import fit_em, search_models
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import (
    _coreset,
    _fit,
    _select,
    _sparse,
    fit_coreset_gmm,
    fit_gmm,
    fit_sparse_gmm,
    loo_subsampled,
    posterior_partition,
    sample_partitions,
    select_k,
)
from conftest import fake_fit

RNG = np.random.default_rng(13)
GOOD = np.concatenate([RNG.normal(0.0, 1.0, (100, 2)), RNG.normal([6.0, -3.0], 1.0, (100, 2))])
TWO = fake_fit([0.5, 0.5], [[0.0, 0.0], [6.0, -3.0]], [np.eye(2), np.eye(2)], GOOD, draws=100, jitter=0.1)


class Recorded(Exception):
    """Raised by a recorder in place of a fit, carrying the seed (and data) it was given."""


def recorder(*names):
    """A stand-in for a fit: raises Recorded with the keyword arguments `names` it was called with."""

    def record(*args, **kwargs):
        values = [kwargs.get(name) for name in names]
        raise Recorded(values[0] if len(values) == 1 else values)

    return record


def recorded(call):
    with pytest.raises(Recorded) as caught:
        call()
    return caught.value.args[0]


def quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return call()


RESP = np.random.default_rng(0).dirichlet(np.ones(3), size=(20, 30))  # 20 draws x 30 points x 3 components


# Each entry: (monkeypatch, seed) -> a result that depends on the seed.
def run_fit_em(monkeypatch, seed):
    return quiet(lambda: fit_em(GOOD, 2, init="random", n_init=2, max_iter=3, random_seed=seed)).means


def run_fit_em_dask(monkeypatch, seed):
    X = da.from_array(GOOD, chunks=50)
    fit = quiet(
        lambda: fit_em(X, 2, init="random", n_init=1, max_iter=3, init_sample_size=100, random_seed=seed)
    )
    return fit.means


def run_em_sample(monkeypatch, seed):
    return fit_em(GOOD, 2, n_init=1, random_seed=0).sample(5, random_seed=seed)[0]


def run_search_models(monkeypatch, seed):
    search = quiet(
        lambda: search_models(GOOD, [2], "VVV", n_init=1, init="random", max_iter=2, random_seed=seed)
    )
    return search.table["log_likelihood"].to_numpy()


def run_fit_gmm(monkeypatch, seed):
    monkeypatch.setattr(_fit, "fit_em", recorder("random_seed"))
    return recorded(lambda: fit_gmm(GOOD, 2, random_seed=seed))


def run_select_k(monkeypatch, seed):
    monkeypatch.setattr(_select, "fit_em", recorder("random_seed"))
    return recorded(lambda: select_k(GOOD, [2], random_seed=seed))


def run_fit_sparse_gmm(monkeypatch, seed):
    monkeypatch.setattr(_sparse, "fit_em", recorder("random_seed"))
    return recorded(lambda: fit_sparse_gmm(GOOD, 3, random_seed=seed))


def run_fit_coreset_gmm(monkeypatch, seed):
    monkeypatch.setattr(_coreset, "fit_gmm", recorder("random_seed", "sample_weight"))
    fit_seed, weights = recorded(
        lambda: fit_coreset_gmm(GOOD, 2, coreset_size=60, em_n_init=1, random_seed=seed)
    )
    return [fit_seed, *weights]


def run_lightweight_coreset(monkeypatch, seed):
    return lightweight_coreset(GOOD, 20, random_seed=seed).points


def run_elongated_clusters(monkeypatch, seed):
    return elongated_clusters(30, random_seed=seed)[0]


def run_sample_partitions(monkeypatch, seed):
    return sample_partitions(RESP, random_seed=seed)


def run_posterior_partition(monkeypatch, seed):
    return posterior_partition(TWO, GOOD[95:105], random_seed=seed).candidate_losses


def run_loo_subsampled(monkeypatch, seed):
    return loo_subsampled(TWO, GOOD, observations=20, random_seed=seed)["observations"]


ENTRY_POINTS = {
    "fit_em": run_fit_em,
    "fit_em-dask": run_fit_em_dask,
    "EMResult.sample": run_em_sample,
    "search_models": run_search_models,
    "fit_gmm": run_fit_gmm,
    "select_k": run_select_k,
    "fit_sparse_gmm": run_fit_sparse_gmm,
    "fit_coreset_gmm": run_fit_coreset_gmm,
    "lightweight_coreset": run_lightweight_coreset,
    "elongated_clusters": run_elongated_clusters,
    "sample_partitions": run_sample_partitions,
    "loo_subsampled": run_loo_subsampled,
}


@pytest.mark.parametrize("run", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_every_kind_of_seed_gives_a_reproducible_result(monkeypatch, run):
    first = run(monkeypatch, np.random.default_rng(7))
    np.testing.assert_array_equal(run(monkeypatch, np.random.default_rng(7)), first)
    assert not np.array_equal(run(monkeypatch, np.random.default_rng(8)), first)
    by_int = run(monkeypatch, 7)
    np.testing.assert_array_equal(run(monkeypatch, np.random.SeedSequence(7)), by_int)
    np.testing.assert_array_equal(run(monkeypatch, np.int64(7)), by_int)
    assert not np.array_equal(run(monkeypatch, 8), by_int)


def test_a_seed_sequence_is_not_changed_by_use():
    seed = np.random.SeedSequence(3)
    first = quiet(lambda: fit_em(GOOD, 2, init="random", n_init=2, max_iter=3, random_seed=seed))
    again = quiet(lambda: fit_em(GOOD, 2, init="random", n_init=2, max_iter=3, random_seed=seed))
    np.testing.assert_array_equal(again.means, first.means)
    assert seed.n_children_spawned == 0


def test_a_partition_estimate_is_reproducible_from_a_generator():
    first = run_posterior_partition(None, np.random.default_rng(7))
    np.testing.assert_array_equal(run_posterior_partition(None, np.random.default_rng(7)), first)


BAD_SEEDS = {
    "float": (1.5, TypeError, r"random_seed must be None, an int >= 0, a numpy\.random\.SeedSequence or a "),
    "text": (
        "42",
        TypeError,
        r"got '42' of type str\. Pass e\.g\. random_seed=0 or random_seed=np\.random\.default_rng",
    ),
    "bool": (True, TypeError, r"got True of type bool"),
    "legacy-random-state": (np.random.RandomState(0), TypeError, r"of type RandomState"),
    "negative": (
        -1,
        ValueError,
        r"random_seed must be None, an int >= 0, .* got -1\. Pass e\.g\. random_seed=0",
    ),
}


@pytest.mark.parametrize(("seed", "error", "message"), BAD_SEEDS.values(), ids=BAD_SEEDS.keys())
@pytest.mark.parametrize("run", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_a_bad_seed_is_refused_by_every_entry_point(monkeypatch, run, seed, error, message):
    with pytest.raises(error, match=message):
        run(monkeypatch, seed)
