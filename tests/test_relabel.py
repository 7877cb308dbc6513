"""Relabelling on whole components (KL divergence of means and covariances): fast, synthetic draws only."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from bayes_gmm.exceptions import IllConditionedCovarianceError
from bayes_gmm.inference import find_relabelling
from bayes_gmm.inference._relabel import matching_costs

#: A dense core (sd 1) inside a broad halo (sd 4), same centre, plus a separate blob.
NESTED_MEANS = np.array([[0.0, 0.0], [0.0, 0.0], [20.0, 0.0]])
NESTED_COVS = np.array([np.eye(2), 16.0 * np.eye(2), [[1.0, 0.5], [0.5, 2.0]]])
NESTED_WEIGHTS = np.array([0.2, 0.5, 0.3])
#: Three well-separated components with different shapes.
SEPARATED_MEANS = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
SEPARATED_COVS = np.array([[[1.0, 0.6], [0.6, 1.0]], [[0.8, -0.3], [-0.3, 0.5]], [[0.6, 0.0], [0.0, 1.2]]])
SEPARATED_WEIGHTS = np.array([0.5, 0.3, 0.2])


def posterior_like_draws(means, covs, weights, *, mean_sd, cov_df, n_chains=4, n_draws=500, seed=0):
    """Draws that never switched: means with Gaussian noise, covariances Wishart around the truth.

    ``mean_sd`` is one noise SD per component; ``cov_df`` the Wishart degrees of freedom (larger: closer to
    the truth); weights are Dirichlet around the truth.
    """
    rng = np.random.default_rng(seed)
    k, d = means.shape
    shape = (n_chains, n_draws, k)
    mean_draws = means + np.asarray(mean_sd)[:, None] * rng.standard_normal((*shape, d))
    z = rng.standard_normal((*shape, cov_df, d))
    chol = np.linalg.cholesky(covs)
    cov_draws = chol @ (np.einsum("...nd,...ne->...de", z, z) / cov_df) @ np.swapaxes(chol, -1, -2)
    weight_draws = rng.dirichlet(300 * weights, size=(n_chains, n_draws))
    return mean_draws, cov_draws, weight_draws


def permuted(perms, *arrays):
    """Each array with its component axis (axis 2) permuted draw by draw: ``new[k] = old[perms[k]]``."""
    return [np.take_along_axis(a, perms.reshape(perms.shape + (1,) * (a.ndim - 3)), axis=2) for a in arrays]


def means_only_wrong_fraction(mean_draws, ref_means, ref_covs):
    """The previous cost (Mahalanobis distance of the means only): share of draws it permutes."""
    k, d = ref_means.shape
    inverse_chol = np.linalg.inv(np.linalg.cholesky(ref_covs))
    diff = mean_draws.reshape(-1, k, 1, d) - ref_means
    costs = np.sum(np.einsum("kde,sjke->sjkd", inverse_chol, diff) ** 2, axis=-1)
    return np.mean([np.any(linear_sum_assignment(cost)[1] != np.arange(k)) for cost in costs])


NESTED_CASES = {
    # the mean noise is the same for core and halo: the means alone cannot tell them apart at all
    "equal_mean_sds": dict(mean_sd=[0.3, 0.3, 0.1], cov_df=30, min_old=0.3),
    # a posterior's noise: the halo's mean is ~ 3x less certain than the core's
    "posterior_like": dict(mean_sd=[0.1, 0.3, 0.1], cov_df=100, min_old=0.05),
    # few points per component: noisy covariances too
    "noisy_covariances": dict(mean_sd=[0.5, 0.5, 0.2], cov_df=5, min_old=0.3),
}


@pytest.mark.parametrize("with_weights", [False, True], ids=["gaussians", "with_weights"])
@pytest.mark.parametrize("case", NESTED_CASES)
def test_nested_components_are_not_switched_by_relabelling(case, with_weights):
    params = NESTED_CASES[case]
    means, covs, weights = posterior_like_draws(
        NESTED_MEANS, NESTED_COVS, NESTED_WEIGHTS, mean_sd=params["mean_sd"], cov_df=params["cov_df"]
    )
    extra = dict(weights=weights, ref_weights=NESTED_WEIGHTS) if with_weights else {}
    relabelling = find_relabelling(means, covs, ref_means=NESTED_MEANS, ref_covariances=NESTED_COVS, **extra)
    # no draw switched, so every permuted draw is a switch created by the relabelling
    old = means_only_wrong_fraction(means, NESTED_MEANS, NESTED_COVS)
    assert relabelling.fraction_relabelled <= 0.01
    assert old >= params["min_old"]  # the means-only cost fails on these very draws


def test_switched_nested_components_are_restored():
    means, covs, weights = posterior_like_draws(
        NESTED_MEANS, NESTED_COVS, NESTED_WEIGHTS, mean_sd=[0.3, 0.3, 0.1], cov_df=30, seed=1
    )
    rng = np.random.default_rng(2)
    perms = np.array([[rng.permutation(3) for _ in range(means.shape[1])] for _ in range(means.shape[0])])
    scrambled = permuted(perms, means, covs, weights)
    relabelling = find_relabelling(
        scrambled[0],
        scrambled[1],
        ref_means=NESTED_MEANS,
        ref_covariances=NESTED_COVS,
        weights=scrambled[2],
        ref_weights=NESTED_WEIGHTS,
    )
    restored = permuted(relabelling.permutations, *scrambled)
    exact = np.all(restored[1] == covs, axis=(2, 3, 4))
    assert exact.mean() >= 0.99


@pytest.mark.parametrize("with_weights", [False, True], ids=["gaussians", "with_weights"])
def test_random_permutations_of_separated_components_are_undone_exactly(with_weights):
    means, covs, weights = posterior_like_draws(
        SEPARATED_MEANS, SEPARATED_COVS, SEPARATED_WEIGHTS, mean_sd=[0.1, 0.1, 0.1], cov_df=50, seed=3
    )
    rng = np.random.default_rng(4)
    perms = np.array([[rng.permutation(3) for _ in range(means.shape[1])] for _ in range(means.shape[0])])
    perms[0, :50] = np.arange(3)  # some draws keep the reference labelling
    scrambled = permuted(perms, means, covs, weights)
    extra = dict(weights=scrambled[2], ref_weights=SEPARATED_WEIGHTS) if with_weights else {}
    relabelling = find_relabelling(
        scrambled[0], scrambled[1], ref_means=SEPARATED_MEANS, ref_covariances=SEPARATED_COVS, **extra
    )
    for restored, truth in zip(
        permuted(relabelling.permutations, *scrambled), (means, covs, weights), strict=True
    ):
        np.testing.assert_array_equal(restored, truth)
    assert relabelling.fraction_relabelled == pytest.approx(np.mean(np.any(perms != np.arange(3), axis=-1)))
    assert relabelling.was_needed


def test_identity_when_draws_already_match():
    means, covs, weights = posterior_like_draws(
        SEPARATED_MEANS, SEPARATED_COVS, SEPARATED_WEIGHTS, mean_sd=[0.1, 0.1, 0.1], cov_df=50, seed=5
    )
    relabelling = find_relabelling(
        means,
        covs,
        ref_means=SEPARATED_MEANS,
        ref_covariances=SEPARATED_COVS,
        weights=weights,
        ref_weights=SEPARATED_WEIGHTS,
    )
    assert relabelling.fraction_relabelled == 0.0 and not relabelling.was_needed
    np.testing.assert_array_equal(relabelling.permutations, np.broadcast_to(np.arange(3), (4, 500, 3)))


def test_matching_costs_are_the_kl_divergences():
    means, covs, weights = posterior_like_draws(
        NESTED_MEANS, NESTED_COVS, NESTED_WEIGHTS, mean_sd=[0.3, 0.3, 0.1], cov_df=10, n_chains=1, n_draws=5
    )
    costs = matching_costs(means[0], covs[0], NESTED_MEANS, NESTED_COVS)
    weighted = matching_costs(
        means[0], covs[0], NESTED_MEANS, NESTED_COVS, weights=weights[0], ref_weights=NESTED_WEIGHTS
    )
    for s in range(5):
        for j in range(3):
            for k in range(3):
                precision = np.linalg.inv(NESTED_COVS[k])
                diff = NESTED_MEANS[k] - means[0, s, j]
                kl = 0.5 * (
                    np.trace(precision @ covs[0, s, j])
                    + diff @ precision @ diff
                    - 2
                    + np.linalg.slogdet(NESTED_COVS[k])[1]
                    - np.linalg.slogdet(covs[0, s, j])[1]
                )
                assert costs[s, j, k] == pytest.approx(kl, rel=1e-10, abs=1e-12)
                w, v = weights[0, s, j], NESTED_WEIGHTS[k]
                bernoulli = w * np.log(w / v) + (1 - w) * np.log((1 - w) / (1 - v))
                assert weighted[s, j, k] == pytest.approx(kl + bernoulli, rel=1e-10, abs=1e-12)
    same = matching_costs(NESTED_MEANS[None], NESTED_COVS[None], NESTED_MEANS, NESTED_COVS)
    np.testing.assert_allclose(np.diagonal(same[0]), 0.0, atol=1e-12)


def test_singular_drawn_covariance_is_matched_and_reported():
    means, covs, _ = posterior_like_draws(
        SEPARATED_MEANS, SEPARATED_COVS, SEPARATED_WEIGHTS, mean_sd=[0.1, 0.1, 0.1], cov_df=50, n_draws=20
    )
    covs[1, 3, 2] = [[1.0, 1.0], [1.0, 1.0]]  # a collapsed (rank-one) component in one draw
    swap = np.array([2, 1, 0])
    means[1, 3], covs[1, 3] = means[1, 3, swap], covs[1, 3, swap]
    relabelling = find_relabelling(means, covs, ref_means=SEPARATED_MEANS, ref_covariances=SEPARATED_COVS)
    np.testing.assert_array_equal(relabelling.permutations[1, 3], swap)  # its log-det is never needed
    assert relabelling.fraction_relabelled == pytest.approx(1 / 80)
    with pytest.raises(IllConditionedCovarianceError, match="not numerically positive definite"):
        matching_costs(means[1], covs[1], SEPARATED_MEANS, SEPARATED_COVS)  # the KL itself is undefined


def test_bad_inputs_raise_with_a_hint():
    means, covs, weights = posterior_like_draws(
        SEPARATED_MEANS, SEPARATED_COVS, SEPARATED_WEIGHTS, mean_sd=[0.1, 0.1, 0.1], cov_df=50, n_draws=5
    )
    refs = dict(ref_means=SEPARATED_MEANS, ref_covariances=SEPARATED_COVS)
    with pytest.raises(TypeError):
        find_relabelling(means, SEPARATED_MEANS, SEPARATED_COVS)  # the old positional call
    singular = SEPARATED_COVS.copy()
    singular[1] = [[1.0, 1.0], [1.0, 1.0]]
    with pytest.raises(IllConditionedCovarianceError, match="reg_covar"):
        find_relabelling(means, covs, ref_means=SEPARATED_MEANS, ref_covariances=singular)
    with pytest.raises(ValueError, match="both weights and ref_weights"):
        find_relabelling(means, covs, weights=weights, **refs)
    with pytest.raises(ValueError, match=r"covariances must have shape \(4, 5, 3, 2, 2\)"):
        find_relabelling(means, covs[..., 0], **refs)
    covs[0, 0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="covariances contains NaN"):
        find_relabelling(means, covs, **refs)
