"""The overfitted ("sparse") mixture: counting non-empty components, and emptying the extra ones."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest

from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import fit_sparse_gmm, n_clusters_distribution
from bayes_gmm.inference._sparse import _occupied_components


def test_occupied_components_of_certain_allocations():
    # Draw 0 puts everyone in component 2; draw 1 uses components 0 and 3; draw 2 uses all four.
    labels = np.array([[2, 2, 2, 2], [0, 3, 0, 3], [0, 1, 2, 3]])
    resp = np.eye(4)[labels]
    np.testing.assert_array_equal(_occupied_components(resp, np.random.default_rng(0)), [1, 2, 4])


def test_occupied_components_frequency_matches_probability():
    # Two points, each in component 0 or 1 with probability 1/2: both in the same one with probability 1/2.
    resp = np.full((20000, 2, 2), 0.5)
    counts = _occupied_components(resp, np.random.default_rng(1))
    assert set(np.unique(counts)) == {1, 2}
    assert np.mean(counts == 1) == pytest.approx(0.5, abs=0.02)


def test_n_clusters_distribution_counts_draws():
    counts = np.array([[3, 3, 4, 3], [2, 3, 3, 3]])
    idata = az.from_dict(
        {"posterior": {"n_clusters": counts, "weights": np.full((2, 4, 5), 0.2)}},
        dims={"weights": ["component"]},
    )
    pmf = n_clusters_distribution(idata)
    assert list(pmf.index) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(pmf.to_numpy(), [0, 1 / 8, 6 / 8, 1 / 8, 0])


def test_n_clusters_distribution_needs_a_sparse_fit():
    idata = az.from_dict(
        {"posterior": {"weights": np.full((1, 2, 3), 1 / 3)}}, dims={"weights": ["component"]}
    )
    with pytest.raises(ValueError, match="fit_sparse_gmm"):
        n_clusters_distribution(idata)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"concentration": 0.0}, ValueError, "concentration must be"),
        ({"max_components": 500}, ValueError, ""),
    ],
)
def test_fit_sparse_gmm_bad_input(kwargs, error, match):
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(error, match=match):
        fit_sparse_gmm(X, **{"max_components": 5, **kwargs})


@pytest.mark.slow
def test_sparse_mixture_empties_the_extra_components():
    """Three clear clusters, six components: the posterior puts most mass on three non-empty ones."""
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.5]])
    X = np.concatenate([rng.normal(c, 0.8, size=(60, 2)) for c in centres])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # no divergences, chains agree on n_clusters
        idata = fit_sparse_gmm(X, 6, covariance_type="diag", draws=400, tune=600, chains=2, random_seed=3)
    assert np.isfinite(idata.attrs["n_clusters_rhat"])
    pmf = n_clusters_distribution(idata)
    assert pmf.idxmax() == 3
    assert pmf[3] > 0.6
    assert pmf[[1, 2]].sum() == 0.0  # three separated clusters are never merged
