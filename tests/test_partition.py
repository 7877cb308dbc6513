"""Co-clustering matrices and point partitions against brute-force references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, mutual_info_score
from sklearn.metrics.cluster import pair_confusion_matrix

from bayes_gmm.inference._coclustering import co_clustering_from_labels, co_clustering_matrix
from bayes_gmm.inference._partition_candidates import (
    argmax_partitions,
    candidate_partitions,
    linkage_partitions,
    sample_partitions,
)
from bayes_gmm.inference._partition_canonical import canonicalize_partitions
from bayes_gmm.inference._partition_loss import (
    PartitionEstimate,
    binder_loss,
    expected_vi_lower_bound,
    point_partition,
)

# --------------------------------------------------------------------------------------------------------
# Helpers: random inputs and brute-force references
# --------------------------------------------------------------------------------------------------------


def _random_resp(rng, n_draws, n_obs, n_comp, concentration=0.5):
    return rng.dirichlet(np.full(n_comp, concentration), size=(n_draws, n_obs))


def _brute_similarity(resp):
    sim = np.einsum("sik,sjk->sij", resp, resp).mean(axis=0)  # (S, N, N) on purpose
    np.fill_diagonal(sim, 1.0)
    return sim


def _brute_similarity_labels(labels):
    same = labels[:, :, None] == labels[:, None, :]
    return same.mean(axis=0)


def _brute_binder(partition, sim):
    together = partition[:, None] == partition[None, :]
    iu = np.triu_indices(len(partition), 1)
    return np.abs(together.astype(float) - sim)[iu].sum()


def _brute_vi_lb(partition, sim):
    n = len(partition)
    total = 0.0
    for i in range(n):
        same = partition == partition[i]
        total += np.log2(same.sum()) - 2 * np.log2(sim[i, same].sum()) + np.log2(sim[i].sum())
    return total / n


def _vi_bits(a, b):
    """Variation of information between two partitions, in bits, from their contingency table (Meila 2007).

    ``VI = -sum_kl r_kl [log2(r_kl / p_k) + log2(r_kl / q_l)]`` with ``r`` the joint label frequencies.
    """
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    joint = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(joint, (ia, ib), 1.0 / len(a))
    p = joint.sum(axis=1, keepdims=True)
    q = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(-np.sum(joint[nz] * (np.log2((joint / p)[nz]) + np.log2((joint / q)[nz]))))


def _simulate_clustered_posterior(rng, sizes=(40, 30, 20), n_draws=150, n_comp=4, gap=4.0, noise=1.5):
    """Responsibilities from a well-separated truth with per-draw noise, merges and label switching.

    Every draw gives each point its true component a logit advantage of `gap` plus Gaussian noise; in 10%
    of draws the two smaller clusters are merged into one component; then the component columns of every
    draw are permuted at random (label switching). `n_comp` exceeds the number of true clusters, so one
    component is (nearly) empty.
    """
    truth = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    n_obs = truth.size
    resp = np.empty((n_draws, n_obs, n_comp))
    for s in range(n_draws):
        assigned = truth.copy()
        if rng.random() < 0.1:
            assigned[assigned == 2] = 1
        logits = gap * np.eye(n_comp)[assigned] + rng.normal(0.0, noise, size=(n_obs, n_comp))
        r = np.exp(logits - logits.max(axis=1, keepdims=True))
        r /= r.sum(axis=1, keepdims=True)
        resp[s] = r[:, rng.permutation(n_comp)]
    return truth, resp


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(20240611)
    truth, resp = _simulate_clustered_posterior(rng)
    return truth, resp, co_clustering_matrix(resp)


# --------------------------------------------------------------------------------------------------------
# Similarity matrices
# --------------------------------------------------------------------------------------------------------


def test_similarity_structure():
    rng = np.random.default_rng(0)
    sim = co_clustering_matrix(_random_resp(rng, 30, 25, 3))
    assert sim.shape == (25, 25)
    np.testing.assert_array_equal(sim, sim.T)
    np.testing.assert_array_equal(np.diagonal(sim), 1.0)
    assert sim.min() >= 0.0 and sim.max() <= 1.0
    off = sim[~np.eye(25, dtype=bool)]
    assert off.max() < 1.0  # soft responsibilities: no pair is certainly together


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 1000])
def test_similarity_matches_brute_force(chunk_size):
    rng = np.random.default_rng(1)
    resp = _random_resp(rng, 23, 17, 4)
    np.testing.assert_allclose(
        co_clustering_matrix(resp, chunk_size=chunk_size), _brute_similarity(resp), rtol=0, atol=1e-13
    )


def test_similarity_invariant_to_label_switching():
    rng = np.random.default_rng(2)
    resp = _random_resp(rng, 50, 40, 4)
    permuted = np.stack([r[:, rng.permutation(4)] for r in resp])
    assert not np.allclose(permuted, resp)
    np.testing.assert_allclose(co_clustering_matrix(permuted), co_clustering_matrix(resp), rtol=0, atol=1e-12)


def test_similarity_accepts_chain_draw_dims():
    rng = np.random.default_rng(3)
    resp = _random_resp(rng, 12, 9, 3).reshape(3, 4, 9, 3)
    np.testing.assert_allclose(
        co_clustering_matrix(resp), _brute_similarity(resp.reshape(12, 9, 3)), rtol=0, atol=1e-13
    )


@pytest.mark.parametrize("chunk_size", [None, 1, 5])
def test_similarity_from_labels_matches_counting(chunk_size):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, size=(31, 20))
    labels[::3] += 100  # label values need not be comparable across draws
    labels[1] = -rng.integers(0, 50, size=20)  # negative and many distinct labels
    sim = co_clustering_from_labels(labels, chunk_size=chunk_size)
    np.testing.assert_array_equal(sim, _brute_similarity_labels(labels))
    np.testing.assert_array_equal(sim, sim.T)
    np.testing.assert_array_equal(np.diagonal(sim), 1.0)


def test_similarity_from_sampled_labels_estimates_the_soft_version():
    rng = np.random.default_rng(5)
    resp = np.repeat(_random_resp(rng, 1, 12, 3, concentration=1.0), 4000, axis=0)
    sampled = sample_partitions(resp, random_seed=6)
    soft = co_clustering_matrix(resp)
    hard = co_clustering_from_labels(sampled)
    # Each entry is a mean of 4000 Bernoulli(p) indicators: sd <= 0.008.
    np.testing.assert_allclose(hard, soft, atol=0.04)
    assert np.abs(hard - soft).max() > 0  # it is an estimate, not the same computation


# --------------------------------------------------------------------------------------------------------
# Expected losses
# --------------------------------------------------------------------------------------------------------


def test_binder_and_vi_match_brute_force():
    rng = np.random.default_rng(7)
    sim = co_clustering_matrix(_random_resp(rng, 40, 15, 3))
    partitions = np.vstack(
        [rng.integers(0, 4, size=(6, 15)), np.zeros((1, 15), int), np.arange(15)[None] * 7 - 3]
    )
    binder = binder_loss(partitions, sim)
    vi = expected_vi_lower_bound(partitions, sim)
    assert binder.shape == vi.shape == (8,)
    for p, b, v in zip(partitions, binder, vi, strict=True):
        assert b == pytest.approx(_brute_binder(p, sim), rel=1e-12, abs=1e-12)
        assert v == pytest.approx(_brute_vi_lb(p, sim), rel=1e-12, abs=1e-12)
        assert binder_loss(p, sim) == pytest.approx(b, rel=1e-14)  # 1-D input gives a float
    assert isinstance(binder_loss(partitions[0], sim), float)
    n_pairs = 15 * 14 / 2
    np.testing.assert_allclose(binder_loss(partitions, sim, normalize=True), binder / n_pairs, rtol=1e-14)


def test_losses_under_a_certain_posterior_are_distances_to_the_truth():
    # If the posterior puts all its mass on c0, E[Binder(c)] is the number of pairs on which c and c0
    # disagree and the VI lower bound is exact: VI(c, c0).
    rng = np.random.default_rng(8)
    c0 = rng.integers(0, 3, size=30)
    sim = co_clustering_from_labels(c0[None])
    for c in [c0, rng.integers(0, 3, size=30), rng.integers(0, 6, size=30), np.zeros(30, int)]:
        confusion = pair_confusion_matrix(c0, c)
        assert binder_loss(c, sim) == pytest.approx((confusion[0, 1] + confusion[1, 0]) / 2, abs=1e-10)
        vi_sklearn = (
            mutual_info_score(c0, c0) + mutual_info_score(c, c) - 2 * mutual_info_score(c0, c)
        ) / np.log(2)
        assert _vi_bits(c0, c) == pytest.approx(vi_sklearn, abs=1e-10)
        assert expected_vi_lower_bound(c, sim) == pytest.approx(vi_sklearn, abs=1e-10)


def test_vi_criterion_jensen_relation_to_expected_vi():
    # Swapping E and log lowers the cross term and raises the constant term g, so
    # VI_LB(c) - g <= E[VI(c, c')] for every c, with g >= 0 independent of c.
    rng = np.random.default_rng(9)
    draws = rng.integers(0, 3, size=(60, 25))
    draws[:30, :10] = 0  # some shared structure
    sim = co_clustering_from_labels(draws)
    sizes = np.stack([np.bincount(d)[d] for d in draws])  # n'_i per draw
    gap = np.mean(np.log2(sizes.mean(axis=0)) - np.log2(sizes).mean(axis=0))
    assert gap > 0
    for c in [draws[0], np.zeros(25, int), np.arange(25), rng.integers(0, 2, size=25)]:
        expected_vi = np.mean([_vi_bits(c, d) for d in draws])
        criterion = expected_vi_lower_bound(c, sim)
        assert criterion >= 0.0
        assert criterion - gap <= expected_vi + 1e-12


def test_losses_prefer_the_truth(clustered):
    truth, _, sim = clustered
    rng = np.random.default_rng(10)
    random_partition = rng.integers(0, 3, size=truth.size)
    assert binder_loss(truth, sim) < binder_loss(random_partition, sim)
    assert expected_vi_lower_bound(truth, sim) < expected_vi_lower_bound(random_partition, sim)
    # Relabelling the truth does not change its loss.
    relabelled = np.array([7, -1, 3])[truth]
    assert binder_loss(relabelled, sim) == pytest.approx(binder_loss(truth, sim), rel=1e-12)


# --------------------------------------------------------------------------------------------------------
# Point estimate
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["binder", "vi"])
def test_point_partition_recovers_truth(clustered, loss):
    truth, resp, sim = clustered
    candidates = candidate_partitions(resp, similarity=sim, random_seed=11)
    est = point_partition(sim, candidates, loss=loss)
    assert isinstance(est, PartitionEstimate)
    assert adjusted_rand_score(truth, est.labels) == 1.0
    assert est.n_clusters == 3
    # Labels ordered by decreasing size; truth sizes are 40, 30, 20.
    np.testing.assert_array_equal(np.bincount(est.labels), [40, 30, 20])


@pytest.mark.parametrize("loss", ["binder", "vi"])
def test_point_partition_from_draw_candidates_only(clustered, loss):
    truth, resp, sim = clustered
    candidates = candidate_partitions(resp, random_seed=12)  # sampled + argmax, no linkage cuts
    est = point_partition(sim, candidates, loss=loss)
    assert adjusted_rand_score(truth, est.labels) > 0.9
    # It is the best of the candidates, and its reported losses are the losses of the candidates.
    reference = binder_loss(candidates, sim) if loss == "binder" else expected_vi_lower_bound(candidates, sim)
    np.testing.assert_allclose(est.candidate_losses, reference, rtol=1e-12)
    assert est.loss == pytest.approx(reference.min(), rel=1e-12)
    assert est.loss == pytest.approx(reference[est.candidate_index], rel=1e-12)
    assert adjusted_rand_score(candidates[est.candidate_index], est.labels) == 1.0


def test_point_partition_exhaustive_on_tiny_problem():
    # With every partition of 5 points as a candidate, the answer is the global minimiser.
    rng = np.random.default_rng(13)
    sim = co_clustering_matrix(_random_resp(rng, 20, 5, 2, concentration=0.3))
    all_labelings = np.array(list(itertools.product(range(5), repeat=5)))
    for loss, fn in [("binder", _brute_binder), ("vi", _brute_vi_lb)]:
        est = point_partition(sim, all_labelings, loss=loss)
        brute = np.array([fn(p, sim) for p in all_labelings])
        assert est.loss == pytest.approx(brute.min(), rel=1e-10, abs=1e-12)
        assert est.n_unique_candidates == 52  # Bell number B5


def test_point_partition_deduplicates_and_breaks_ties_by_position():
    sim = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    candidates = np.array([[0, 1, 2], [5, 5, 9], [1, 1, 0], [0, 0, 0]])
    est = point_partition(sim, candidates, order="first")
    assert est.candidate_index == 1  # rows 1 and 2 are the same partition; the first wins
    assert est.n_unique_candidates == 3
    assert est.labels.tolist() == [0, 0, 1]
    assert est.loss == pytest.approx(0.4, rel=1e-12)
    assert est.candidate_losses[1] == est.candidate_losses[2]
    assert not est.labels.flags.writeable
    single = point_partition(sim, [4, 4, 4])  # a single 1-D candidate
    assert single.labels.tolist() == [0, 0, 0] and single.candidate_index == 0


def test_canonicalize_partitions_matches_python_reference():
    rng = np.random.default_rng(14)
    labels = rng.integers(-3, 6, size=(40, 12))
    first = canonicalize_partitions(labels, order="first")
    by_size = canonicalize_partitions(labels, order="size")
    for row, f, s in zip(labels, first, by_size, strict=True):
        uniq_first = list(dict.fromkeys(row.tolist()))
        assert f.tolist() == [uniq_first.index(v) for v in row]
        counts = {v: int(np.sum(row == v)) for v in uniq_first}
        uniq_size = sorted(uniq_first, key=lambda v: (-counts[v], uniq_first.index(v)))
        assert s.tolist() == [uniq_size.index(v) for v in row]
    np.testing.assert_array_equal(canonicalize_partitions(labels[0]), first[0])


# --------------------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------------------


def test_sample_partitions_frequencies_and_reproducibility():
    rng = np.random.default_rng(15)
    r = _random_resp(rng, 1, 6, 4, concentration=1.0)[0]
    r[:, 3] = 0.0  # a component with zero probability is never drawn
    r /= r.sum(axis=1, keepdims=True)
    resp = np.repeat(r[None], 5000, axis=0)
    sampled = sample_partitions(resp, random_seed=16)
    assert sampled.shape == (5000, 6) and sampled.dtype == np.int64
    freq = np.stack([np.bincount(sampled[:, i], minlength=4) / 5000 for i in range(6)])
    np.testing.assert_allclose(freq, r, atol=0.03)  # sd <= 0.0071
    assert np.all(sampled != 3)
    np.testing.assert_array_equal(sampled, sample_partitions(resp, random_seed=16))
    assert not np.array_equal(sampled, sample_partitions(resp, random_seed=17))


def test_subset_of_draws_is_distinct_and_ordered():
    n_draws = 10
    resp = np.zeros((n_draws, 3, n_draws))
    resp[np.arange(n_draws), :, np.arange(n_draws)] = 1.0  # draw s puts everything in component s
    chosen = argmax_partitions(resp, n=4, random_seed=0)[:, 0]
    assert chosen.shape == (4,)
    assert np.all(np.diff(chosen) > 0)
    sampled = sample_partitions(resp, n=4, random_seed=0)[:, 0]
    assert len(set(sampled.tolist())) == 4
    np.testing.assert_array_equal(argmax_partitions(resp)[:, 0], np.arange(n_draws))


def test_candidate_partitions_pools_sources(clustered):
    truth, resp, sim = clustered
    argmax_only = candidate_partitions(resp, sampled=False, n=20, random_seed=1)
    assert argmax_only.shape == (20, truth.size)
    np.testing.assert_array_equal(argmax_only, argmax_partitions(resp, n=20, random_seed=1))
    pooled = candidate_partitions(resp, n=20, similarity=sim, max_clusters=5, random_seed=1)
    assert pooled.shape == (20 + 20 + 5, truth.size)
    np.testing.assert_array_equal(pooled[20:40], argmax_only)
    np.testing.assert_array_equal(pooled[40:], linkage_partitions(sim, max_clusters=5))


def test_linkage_partitions_cut_recovers_blocks(clustered):
    truth, _, sim = clustered
    cuts = linkage_partitions(sim, max_clusters=4)
    assert cuts.shape == (4, truth.size)
    assert np.all(cuts[0] == 0)
    assert adjusted_rand_score(truth, cuts[2]) == 1.0
    assert [len(np.unique(c)) for c in cuts] == [1, 2, 3, 4]


# --------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------

_GOOD_RESP = np.full((2, 3, 2), 0.5)
_GOOD_SIM = np.eye(3)


@pytest.mark.parametrize(
    ("resp", "match"),
    [
        (np.full((3, 2), 0.5), r"resp must be 3-D .* 2 dimension.*resp\[None\]"),
        (np.where(np.arange(12).reshape(2, 3, 2) == 5, np.nan, 0.5), "finite values.*draw 0, observation 2"),
        (np.full((2, 3, 2), 0.4), r"sum to 1 .* sums to 0\.8"),
        (np.stack([np.full((3, 2), 0.5), [[1.5, -0.5]] * 3]), r"probabilities in \[0, 1\].*np\.exp"),
        (np.zeros((0, 3, 2)), "n_draws >= 1"),
    ],
)
def test_resp_validation(resp, match):
    with pytest.raises(ValueError, match=match):
        co_clustering_matrix(resp)
    with pytest.raises(ValueError, match=match):
        sample_partitions(resp)


def test_resp_tolerance_is_configurable():
    resp = np.full((2, 3, 2), 0.5 + 1e-4)
    with pytest.raises(ValueError, match="atol=1e-06"):
        co_clustering_matrix(resp)
    assert co_clustering_matrix(resp, atol=1e-3).shape == (3, 3)


@pytest.mark.parametrize(
    ("sim", "match"),
    [
        (np.ones((3, 2)), "square"),
        (np.array([[1.0, 0.2, 0], [0.3, 1.0, 0], [0, 0, 1]]), "symmetric"),
        (np.full((3, 3), 0.5), "unit diagonal"),
        (np.array([[1.0, 2.0, 0], [2.0, 1.0, 0], [0, 0, 1]]), r"\[0, 1\]"),
        (np.where(np.eye(3) > 0, 1.0, np.nan), "finite"),
    ],
)
def test_similarity_validation(sim, match):
    with pytest.raises(ValueError, match=match):
        binder_loss([0, 0, 1], sim)
    with pytest.raises(ValueError, match=match):
        point_partition(sim, [[0, 0, 1]])


def test_partition_validation():
    with pytest.raises(ValueError, match="has 4 labels per partition but similarity is 3 x 3"):
        binder_loss([0, 0, 1, 1], _GOOD_SIM)
    with pytest.raises(ValueError, match="integer cluster labels"):
        expected_vi_lower_bound([0.5, 0, 1], _GOOD_SIM)
    with pytest.raises(ValueError, match="integer cluster labels"):
        point_partition(_GOOD_SIM, [[0, np.nan, 1]])
    with pytest.raises(ValueError, match=r"1-D .* or 2-D"):
        point_partition(_GOOD_SIM, np.zeros((2, 2, 3), int))
    with pytest.raises(ValueError, match="labels must be 2-D"):
        co_clustering_from_labels([0, 1, 1])
    # Integer-valued floats are accepted as labels.
    assert binder_loss(np.array([0.0, 0.0, 1.0]), _GOOD_SIM) == binder_loss([0, 0, 1], _GOOD_SIM)


def test_option_validation():
    with pytest.raises(ValueError, match=r"loss must be one of .*'binder', 'vi'.* got 'ari'"):
        point_partition(_GOOD_SIM, [[0, 0, 1]], loss="ari")
    with pytest.raises(ValueError, match="order must be one of"):
        point_partition(_GOOD_SIM, [[0, 0, 1]], order="random")
    with pytest.raises(ValueError, match="n must be an integer from 1 to the number of draws"):
        sample_partitions(_GOOD_RESP, n=3)
    with pytest.raises(ValueError, match="at least one source"):
        candidate_partitions(_GOOD_RESP, sampled=False, argmax=False)
    with pytest.raises(ValueError, match="method must be one of"):
        linkage_partitions(_GOOD_SIM, method="ward")
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        co_clustering_matrix(_GOOD_RESP, chunk_size=0)
    with pytest.raises(ValueError, match="similarity has 4 rows but resp has 3 observations"):
        candidate_partitions(_GOOD_RESP, similarity=np.eye(4))
