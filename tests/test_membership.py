"""Membership probabilities, co-clustering and the point partition, against simulated truth and SciPy."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.special import logsumexp
from sklearn.metrics import adjusted_rand_score

from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import IllConditionedCovarianceError
from bayes_gmm.inference import (
    co_clustering,
    compare_with_em,
    draw_responsibilities,
    fit_gmm,
    membership_probabilities,
    posterior_log_density,
    posterior_partition,
)
from bayes_gmm.inference._membership import weighted_log_densities

CENTRES = np.array([[-4.0, 0.0], [4.0, 0.0]])
DEEP_AND_MIDWAY = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 0.0]])


@pytest.fixture(scope="module")
def two_clusters():
    """Two equal, spherical, well separated clusters; the midpoint lies on the decision boundary."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(c, 1.0, size=(80, 2)) for c in CENTRES])
    # Symmetrise about the midpoint so that (0, 0) is equidistant from both fitted clusters.
    X = np.concatenate([X, -X])
    labels = np.concatenate([np.zeros(80), np.ones(80), np.ones(80), np.zeros(80)]).astype(int)
    idata = fit_gmm(X, 2, covariance_type="spherical", draws=200, tune=200, chains=2, random_seed=5)
    return X, labels, idata


def _scipy_responsibilities(X, weights, means, covariances):
    joint = np.column_stack(
        [
            w * stats.multivariate_normal(m, c).pdf(X)
            for w, m, c in zip(weights, means, covariances, strict=True)
        ]
    )
    return joint / joint.sum(axis=1, keepdims=True)


def test_draw_responsibilities_match_scipy_per_draw(two_clusters):
    X, _, idata = two_clusters
    resp = draw_responsibilities(idata)
    post = idata.posterior
    assert resp.shape == (post.sizes["chain"] * post.sizes["draw"], X.shape[0], 2)
    for chain, draw in [(0, 0), (1, 57), (1, 199)]:
        params = post.isel(chain=chain, draw=draw)
        expected = _scipy_responsibilities(
            X, params["weights"].values, params["means"].values, params["covariances"].values
        )
        np.testing.assert_allclose(resp[chain * post.sizes["draw"] + draw], expected, atol=1e-12)


def test_membership_deep_points_are_certain_and_midpoint_is_half(two_clusters):
    _, _, idata = two_clusters
    membership = membership_probabilities(idata, DEEP_AND_MIDWAY)
    p = membership["probability"].values
    assert p[0].max() > 0.999 and p[1].max() > 0.999
    assert p[0].argmax() != p[1].argmax()
    np.testing.assert_allclose(p[2], [0.5, 0.5], atol=0.1)
    assert membership["entropy"].values[2] > 0.65  # log 2 = 0.693 for an even split
    assert membership["entropy"].values[:2].max() < 0.01
    # The posterior is uncertain about the midpoint: its interval is wide; deep points' intervals are not.
    width = membership["probability_upper"].values - membership["probability_lower"].values
    assert width[2].min() > 0.2 and width[:2].max() < 0.01


def test_membership_schema_and_summaries(two_clusters):
    _, _, idata = two_clusters
    membership = membership_probabilities(idata, interval_prob=0.8)
    assert membership["probability"].dims == ("obs_id", "component")
    np.testing.assert_array_equal(membership["obs_id"].values, idata.observed_data["obs_id"].values)
    np.testing.assert_array_equal(membership["component"].values, idata.posterior["component"].values)
    p = membership["probability"].values
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    resp = draw_responsibilities(idata)
    np.testing.assert_allclose(p, resp.mean(axis=0))
    np.testing.assert_allclose(membership["probability_lower"].values, np.quantile(resp, 0.1, axis=0))
    np.testing.assert_allclose(membership["probability_upper"].values, np.quantile(resp, 0.9, axis=0))
    np.testing.assert_array_equal(membership["most_probable"].values, p.argmax(axis=1))
    np.testing.assert_allclose(membership["entropy"].values, stats.entropy(p, axis=1), atol=1e-12)
    assert membership.attrs["source"] == "posterior"
    assert membership.attrs["n_draws"] == resp.shape[0]


def test_membership_of_new_points_uses_every_draw(two_clusters):
    _, _, idata = two_clusters
    new = np.array([[-1.0, 0.5], [2.0, -1.0], [10.0, 10.0]])
    membership = membership_probabilities(idata, new, max_draws=50)
    post = idata.posterior.to_dataset().stack(sample=("chain", "draw"))
    keep = np.linspace(0, post.sizes["sample"] - 1, 50).round().astype(int)
    expected = np.mean(
        [
            _scipy_responsibilities(
                new,
                post["weights"].values[:, s],
                post["means"].values[:, :, s],
                post["covariances"].values[:, :, :, s],
            )
            for s in keep
        ],
        axis=0,
    )
    np.testing.assert_allclose(membership["probability"].values, expected, atol=1e-10)
    assert membership.sizes["obs_id"] == 3


def test_em_membership_equals_em_responsibilities(two_clusters):
    X, _, _ = two_clusters
    em = fit_em(X, 2, covariance_type="spherical", random_seed=0)
    membership = membership_probabilities(em, X)
    np.testing.assert_allclose(membership["probability"].values, em.predict_proba(X))
    assert "probability_lower" not in membership
    assert membership.attrs["source"] == "em"
    similarity = co_clustering(em, X).values
    expected = em.predict_proba(X) @ em.predict_proba(X).T
    np.fill_diagonal(expected, 1.0)  # a point always shares its own component
    np.testing.assert_allclose(similarity, expected, atol=1e-12)


def test_co_clustering_is_invariant_to_relabelling_the_draws(two_clusters):
    _, _, idata = two_clusters
    before = co_clustering(idata, max_draws=None)
    assert before.dims == ("obs_id", "obs_id_2")
    np.testing.assert_allclose(before.values, before.values.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(before.values), 1.0, atol=1e-12)
    # Swap the two components' labels in a random half of the draws: membership pools the wrong labels
    # (that is what relabelling prevents), the co-clustering matrix does not care.
    scrambled = idata.copy()
    post = scrambled.posterior.to_dataset()
    swap = xr.DataArray(
        np.random.default_rng(0).random((post.sizes["chain"], post.sizes["draw"])) < 0.5,
        dims=("chain", "draw"),
    )
    scrambled["posterior"] = post.where(~swap, post.isel(component=[1, 0]).assign_coords(component=[0, 1]))
    np.testing.assert_allclose(co_clustering(scrambled, max_draws=None).values, before.values, atol=1e-10)
    deep = membership_probabilities(scrambled, DEEP_AND_MIDWAY)["probability"].values[0]
    assert deep.max() < 0.9  # pooled over swapped labels the deep point looks uncertain


def test_posterior_partition_recovers_the_true_clusters(two_clusters):
    _, labels, idata = two_clusters
    estimate = posterior_partition(idata, random_seed=0)
    assert estimate.n_clusters == 2
    assert adjusted_rand_score(labels, estimate.labels) > 0.9


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"interval_prob": 1.0}, ValueError, "interval_prob must be in"),
        ({"X": np.zeros((3, 5))}, ValueError, "X"),
        ({"max_draws": 0}, ValueError, "max_draws"),
    ],
)
def test_membership_bad_input(two_clusters, kwargs, error, match):
    _, _, idata = two_clusters
    with pytest.raises(error, match=match):
        membership_probabilities(idata, **kwargs)


def test_em_membership_needs_the_data(two_clusters):
    X, _, _ = two_clusters
    em = fit_em(X, 2, random_seed=0)
    with pytest.raises(ValueError, match="X is required for an EM fit"):
        membership_probabilities(em)


def test_posterior_log_density_is_the_mean_mixture_density(two_clusters):
    X, _, idata = two_clusters
    points = np.array([[0.0, 0.0], [-4.0, 1.0], [30.0, 0.0]])
    post = idata.posterior.to_dataset().stack(sample=("chain", "draw"))
    densities = [
        sum(
            post["weights"].values[k, s]
            * stats.multivariate_normal(
                post["means"].values[k, :, s], post["covariances"].values[k, :, :, s]
            ).pdf(points)
            for k in range(2)
        )
        for s in range(post.sizes["sample"])
    ]
    with np.errstate(divide="ignore"):
        expected = np.log(np.mean(densities, axis=0))
    np.testing.assert_allclose(posterior_log_density(idata, points)[:2], expected[:2], rtol=1e-10)
    assert posterior_log_density(idata, points)[2] < -100  # far from the data, finite and tiny
    # On the training data it equals the log of the mean stored pointwise likelihood.
    stored = idata.log_likelihood["obs"].stack(sample=("chain", "draw")).transpose("obs_id", "sample").values
    np.testing.assert_allclose(
        posterior_log_density(idata), logsumexp(stored, axis=1) - np.log(stored.shape[1]), atol=1e-8
    )
    em = fit_em(X, 2, covariance_type="spherical", random_seed=0)
    np.testing.assert_allclose(posterior_log_density(em, points), em.score_samples(points))


@pytest.mark.parametrize("n_features", [1, 3])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_responsibilities_of_a_synthetic_posterior_match_scipy(covariance_type, n_features):
    """Posterior draws of every covariance structure (built by hand, no sampling) against SciPy."""
    rng = np.random.default_rng(7)
    chains, draws, k = 2, 3, 3
    weights = rng.dirichlet(np.ones(k), size=(chains, draws))
    means = rng.normal(0.0, 2.0, size=(chains, draws, k, n_features))
    a = rng.normal(size=(chains, draws, k, n_features, n_features))
    covariances = {
        "full": a @ np.swapaxes(a, -1, -2) + 0.5 * np.eye(n_features),
        "tied": np.broadcast_to((a @ np.swapaxes(a, -1, -2))[:, :, :1], a.shape) + 0.5 * np.eye(n_features),
        "diag": rng.uniform(0.5, 2.0, size=(chains, draws, k, n_features))[..., None] * np.eye(n_features),
        "spherical": rng.uniform(0.5, 2.0, size=(chains, draws, k, 1, 1)) * np.eye(n_features),
    }[covariance_type]
    idata = az.from_dict(
        {"posterior": {"weights": weights, "means": means, "covariances": covariances}},
        coords={"component": np.arange(k), "feature": [f"x{d}" for d in range(n_features)]},
        dims={
            "weights": ["component"],
            "means": ["component", "feature"],
            "covariances": ["component", "feature", "feature_cov"],
        },
    )
    X = rng.normal(0.0, 2.0, size=(20, n_features))
    resp = draw_responsibilities(idata, X)
    for c in range(chains):
        for d in range(draws):
            expected = _scipy_responsibilities(X, weights[c, d], means[c, d], covariances[c, d])
            np.testing.assert_allclose(resp[c * draws + d], expected, atol=1e-12)
    np.testing.assert_allclose(membership_probabilities(idata, X)["probability"].values, resp.mean(axis=0))


def test_dataframe_points_are_matched_by_column_name(two_clusters):
    X, _, idata = two_clusters
    named = idata.copy()
    named["posterior"] = named.posterior.to_dataset().assign_coords(
        feature=["a", "b"], feature_cov=["a", "b"]
    )
    frame = pd.DataFrame(X[:10], columns=["a", "b"])
    in_order = membership_probabilities(named, frame)["probability"].values
    swapped = membership_probabilities(named, frame[["b", "a"]])["probability"].values
    np.testing.assert_allclose(swapped, in_order)
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        membership_probabilities(named, frame.rename(columns={"b": "c"}))


def test_compare_with_em_reports_posterior_moments_and_em_estimates(two_clusters):
    X, _, idata = two_clusters
    em = fit_em(X, 2, covariance_type="spherical", random_seed=0)
    table = compare_with_em(idata, em).set_index("parameter")
    means = idata.posterior["means"]
    for k in range(2):
        for f, name in enumerate(idata.posterior["feature"].values):
            row = table.loc[f"means[{k}, {name}]"]
            assert row["posterior_mean"] == pytest.approx(
                float(means.sel(component=k).isel(feature=f).mean())
            )
            assert row["posterior_sd"] == pytest.approx(
                float(means.sel(component=k).isel(feature=f).std(ddof=1)), rel=1e-3
            )
            assert row["em"] == pytest.approx(em.means[k, f])
        sd_row = table.loc[f"sd[{k}, {idata.posterior['feature'].values[0]}]"]
        assert sd_row["em"] == pytest.approx(np.sqrt(em.covariances[k]))
    # Same labelling: every EM estimate lies well inside its posterior.
    assert table["difference_in_sd"].abs().max() < 3


def test_a_degenerate_posterior_draw_gets_a_clear_error():
    singular = np.zeros((1, 1, 2, 2))
    with pytest.raises(IllConditionedCovarianceError, match="not numerically positive definite"):
        weighted_log_densities(np.zeros((3, 2)), np.ones((1, 1)), np.zeros((1, 1, 2)), singular)
