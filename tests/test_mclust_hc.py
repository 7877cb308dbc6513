"""The hierarchical start (init="hc", the default) and the default fits against R mclust 6.0.0.

Fixtures in tests/data/mclust/, made by make_mclust_reference.R there: for ten data sets that no other test
uses (R's datasets, MASS, palmerpenguins and mclust packages; 47 to 6,809 rows, 1 to 6 features),
mclust_hc_fits_<data>.json holds ``Mclust(x, G, modelNames = m)`` for every covariance model and G = 1..6,
and the partitions mclust starts EM from (``hclass(hc(x))``, or ``qclass(x, G)`` for one feature); the
fits of mclust_fits_<data>.json (faithful, iris, diabetes, acidity; G = 1..4) are used too.
"""

from __future__ import annotations

import json
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_gmm.em_baseline._fit as fit_module
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.em_baseline._hc import hc_labels, hc_start, hc_tree, transform
from bayes_gmm.em_baseline._init import quantile_labels
from bayes_gmm.exceptions import ConvergenceWarning, IllConditionedCovarianceError

DATA = Path(__file__).parent / "data"
HELD_OUT = (
    "airquality",
    "banknote",
    "crabs",
    "geyser",
    "gvhd",
    "penguins",
    "quakes",
    "rivers",
    "swiss",
    "usarrests",
)
#: mclust's log-likelihood is reached when the fit is at most this far below it (mclust's EM stops at a
#: relative change of 1e-5, so a converged fit of the same maximum ends at or above it).
LOGLIK_TOL = 1e-3
#: The fits that the default misses (seed 0), and by how much at most. geyser's durations are rounded (to
#: 2 and 4 minutes for a third of the eruptions), so many merges of the hierarchical clustering tie exactly
#: in real arithmetic and each implementation breaks them by its rounding (mclust's Givens updates of
#: Cholesky factors, our LDL^T factorisations): from K = 2 on mclust's partition differs from ours (by 2
#: points at K = 2), and ours at K = 6 ends with a component on points of one duration (collapsed); the
#: screened k-means++ starts then end 0.23 and 0.29 below mclust. From mclust's partition our EM reaches
#: or beats mclust (-1318.72 and -1317.22).
MISSED = {("geyser", "VVI", 6): 0.3, ("geyser", "VVE", 6): 0.3}
#: The default-tier cases: the four largest shortfalls per data set of the k-means start (init="kmeans",
#: seed 0, before failed starts were skipped; an error counts as the largest, in the fixtures' order).
HARD = {
    "airquality": [("VEV", 6), ("EVV", 6), ("VVV", 6), ("VEV", 2)],
    "banknote": [("EVV", 4), ("EVV", 5), ("EVV", 6), ("EVV", 3)],
    "crabs": [("EVV", 6), ("EEE", 4), ("VVE", 4), ("VEE", 6)],
    "geyser": [("EVV", 5), ("EVV", 6), ("EEE", 2), ("EEV", 2)],
    "penguins": [("VVE", 4), ("EVI", 5), ("EVE", 6)],
    "quakes": [("EEV", 2), ("VEE", 3), ("EEE", 3), ("EEI", 3)],
    "rivers": [("V", 5), ("V", 4)],
    "swiss": [("EVE", 4), ("EVV", 3), ("EVV", 4), ("VEV", 6)],
    "usarrests": [("EVE", 4), ("EVE", 6), ("VVE", 5), ("VVE", 6)],
    # 6,809 rows: the hierarchical start clusters a random subset of 2,000 (mclust's is another).
    "gvhd": [("VVV", 4), ("VEV", 6)],
}


def load(name):
    path = (
        DATA / "mclust" / (f"mclust_hc_fits_{name}.json" if name in HELD_OUT else f"mclust_fits_{name}.json")
    )
    ref = json.loads(path.read_text())
    return pd.read_csv(DATA / ref["csv"]).to_numpy(dtype=float), ref


def mclust_loglik(ref, model, k):
    entry = next(e for e in ref["fits"] if e["model"] == model and e["G"] == k)
    return None if entry["status"] != "ok" else entry["fit"]["loglik"]


def same_partition(a, b) -> bool:
    """Whether two label vectors make the same partition (up to the names of the classes)."""
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist(), strict=True))
    return len(pairs) == len(set(a)) == len(set(b))


def quiet_fit(X, k, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_em(X, k, **options)


# -- mclust's starts --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name in HELD_OUT if name != "geyser"])  # geyser: see MISSED
def test_starts_are_mclusts_partitions(name):
    """The hierarchical clustering (mclust's hc, VVV criterion, SVD transformation) cut at K = 1..6, and in
    one dimension the quantile classes (qclass), equal mclust's; for gvhd on mclust's subset of rows."""
    X, ref = load(name)
    if ref["subset_rows"] is not None:
        X = X[np.asarray(ref["subset_rows"])]
    for k, classes in zip(ref["G"], ref["start"]["classes"], strict=True):
        ours = hc_labels(X, k) if X.shape[1] > 1 else quantile_labels(X[:, 0], k)
        assert same_partition(ours, classes), (name, k)


def _criterion_term(points, size, alpha):
    """n log(det(W / n) + (tr W + alpha) / n), det taken as 0 while n <= p; computed directly."""
    n, p = size.sum(), points.shape[1]
    mean = size @ points / n
    scatter = (size[:, None] * (points - mean)).T @ (points - mean)
    det = np.linalg.det(scatter / n) if n > p else 0.0
    return n * np.log(max(det, 0.0) + (np.trace(scatter) + alpha) / n)


@pytest.mark.parametrize("use", ["SVD", "VARS"])
def test_every_merge_is_the_cheapest_by_the_criterion(use):
    """Replaying the tree of usarrests (50 states), each merge costs what the criterion says and no other
    pair of the clusters at that step costs less (a brute-force search over all pairs)."""
    X, _ = load("usarrests")
    tree = hc_tree(X, use=use)
    Z = transform(X, use)  # no duplicated rows: the points are the rows, in np.unique's order
    Z = Z[np.unique(X, axis=0, return_index=True)[1]]
    ones = np.ones(len(Z))
    centred = Z - Z.mean(axis=0)
    alpha = np.sum(centred**2) / Z.size
    np.testing.assert_allclose(tree.alpha, alpha, rtol=1e-12)
    clusters = {i: [i] for i in range(len(Z))}
    terms = {i: _criterion_term(Z[[i]], ones[:1], alpha) for i in clusters}
    for (a, b), cost in zip(tree.merges, tree.costs, strict=True):
        merged = _criterion_term(
            Z[clusters[a] + clusters[b]], ones[: len(clusters[a]) + len(clusters[b])], alpha
        )
        np.testing.assert_allclose(cost, merged - terms[a] - terms[b], rtol=1e-9, atol=1e-9)
        cheapest = min(
            _criterion_term(Z[clusters[i] + clusters[j]], ones[: len(clusters[i]) + len(clusters[j])], alpha)
            - terms[i]
            - terms[j]
            for i, j in combinations(sorted(clusters), 2)
        )
        assert cost <= cheapest + 1e-9
        clusters[a] += clusters.pop(b)
        terms[a] = merged


def test_svd_transformation_decorrelates_the_standardised_data():
    """ "SVD": the standardised data projected on their principal axes, each divided by the square root of
    its singular value, so Z^T Z is diagonal with the singular values on it."""
    X, _ = load("crabs")
    standardised = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    singular = np.linalg.svd(standardised, compute_uv=False)
    Z = transform(X, "SVD")
    np.testing.assert_allclose(Z.T @ Z, np.diag(singular), atol=1e-9 * singular[0])


def test_a_row_of_weight_g_is_clustered_as_g_copies():
    X, _ = load("penguins")
    X = X[:80]
    weights = np.random.default_rng(0).integers(1, 4, size=len(X)).astype(float)
    repeated = np.repeat(X, weights.astype(int), axis=0)
    for k in (2, 3, 5):
        weighted = hc_labels(X, k, sample_weight=weights)
        assert same_partition(np.repeat(weighted, weights.astype(int)), hc_labels(repeated, k))


def test_the_subset_of_large_data_is_drawn_from_the_seed_among_rows_of_positive_weight():
    X, _ = load("gvhd")
    weights = np.ones(len(X))
    weights[::3] = 0.0
    rows, labels = hc_start(X, 3, np.random.default_rng(1), sample_size=500, sample_weight=weights)
    again, _ = hc_start(X, 3, np.random.default_rng(1), sample_size=500, sample_weight=weights)
    other, _ = hc_start(X, 3, np.random.default_rng(2), sample_size=500, sample_weight=weights)
    assert len(rows) == 500 and np.all(np.diff(rows) > 0) and np.all(weights[rows] > 0)
    assert sorted(set(labels)) == [0, 1, 2]
    np.testing.assert_array_equal(rows, again)
    assert not np.array_equal(rows, other)


# -- fits ----------------------------------------------------------------------------------------------


def test_the_hierarchical_start_alone_is_em_from_mclusts_partition():
    X, ref = load("usarrests")
    for k in (2, 3, 5):
        resp = np.eye(k)[np.asarray(ref["start"]["classes"][k - 1]) - 1]
        ours = quiet_fit(X, k, covariance_type="VVV", n_init=1)
        from_mclust = quiet_fit(X, k, covariance_type="VVV", initial_resp=resp, n_init=1)
        np.testing.assert_allclose(ours.log_likelihood, from_mclust.log_likelihood, rtol=1e-12)
        assert ours.log_likelihood >= mclust_loglik(ref, "VVV", k) - LOGLIK_TOL


def test_the_hierarchical_start_of_vve_also_runs_mclusts_em_path():
    """mclust's VVE M-step is not the exact maximiser (tests/test_mclust_msteps.py), so from the same
    partition its EM can end at another maximum: crabs, K = 4, 29 log-likelihood units above ours. The
    hierarchical start of a VVE fit also runs EM with mclust's M-step, continued by the exact one, and keeps
    the better."""
    X, ref = load("crabs")
    resp = np.eye(4)[np.asarray(ref["start"]["classes"][3]) - 1]
    exact_only = quiet_fit(X, 4, covariance_type="VVE", initial_resp=resp, n_init=1)
    fit = quiet_fit(X, 4, covariance_type="VVE", n_init=1)
    target = mclust_loglik(ref, "VVE", 4)
    assert exact_only.log_likelihood < target - 20
    assert fit.log_likelihood >= target - LOGLIK_TOL
    assert fit.n_iter == len(fit.log_likelihood_history) - 1  # mclust's path and ours, one history


def _shortfalls(name, cases):
    X, ref = load(name)
    short = []
    for model, k in cases:
        target = mclust_loglik(ref, model, k)
        if target is None:
            continue
        fit = quiet_fit(X, k, covariance_type=model, random_seed=0)
        allowed = MISSED.get((name, model, k), LOGLIK_TOL)
        if fit.log_likelihood < target - allowed:
            short.append((model, k, round(fit.log_likelihood - target, 3)))
    return short


@pytest.mark.parametrize("name", sorted(HARD))
def test_default_fit_reaches_mclust_where_the_k_means_start_did_not(name):
    assert not _shortfalls(name, HARD[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", [*HELD_OUT, "faithful", "iris", "diabetes", "acidity"])
def test_default_fit_reaches_mclust_for_every_model_and_k(name):
    _, ref = load(name)
    assert not _shortfalls(name, [(entry["model"], entry["G"]) for entry in ref["fits"]])


def test_starts_that_fail_are_counted_and_further_starts_are_tried(monkeypatch):
    """When every planned start fails, the hierarchical start with the other transformation is tried,
    then k-means++ starts; the warning counts the failed starts."""
    X, _ = load("usarrests")
    real, tried = fit_module.start_parameters, []

    def failing(X, n_components, start, rng, **options):
        tried.append(start)
        if len(tried) <= 20:  # the planned starts: hc (SVD) and 19 k-means++ candidates
            raise IllConditionedCovarianceError("a start that collapsed")
        return real(X, n_components, start, rng, **options)

    monkeypatch.setattr(fit_module, "start_parameters", failing)
    with pytest.warns(ConvergenceWarning, match=r"^20 of 26 EM starts failed"):
        fit = fit_em(X, 3, covariance_type="VVV", random_seed=0)
    assert tried == [("hc", "SVD")] + [("kmeans++", None)] * 19 + [("hc", "VARS")] + [("kmeans++", None)] * 5
    labels = hc_labels(X, 3, use="VARS")
    from_vars = quiet_fit(X, 3, covariance_type="VVV", initial_resp=np.eye(3)[labels], n_init=1)
    assert fit.log_likelihood >= from_vars.log_likelihood - 1e-9


def test_when_every_start_collapses_the_error_counts_them_and_says_what_to_change():
    X = np.repeat(np.random.default_rng(0).normal(size=(3, 2)), 5, axis=0)  # 3 distinct points
    message = (
        r"EM failed: all 26 starts \(1 hierarchical \(hc_use='SVD'\), 19 k-means\+\+; then 1 hierarchical "
        r"\(hc_use='VARS'\), 5 k-means\+\+\) ended with a collapsed component .* Increase reg_covar"
    )
    with pytest.raises(IllConditionedCovarianceError, match=message):
        fit_em(X, 3, covariance_type="VVV", reg_covar=0.0, random_seed=0)


def test_a_start_whose_first_m_step_fails_is_skipped_not_fatal():
    """banknote, EVV with 4 to 6 components: some k-means partitions give a singular scatter in the first
    M-step; those starts are skipped and the fit reaches mclust's."""
    X, ref = load("banknote")
    for k in (4, 6):
        with pytest.warns(ConvergenceWarning, match=r"of 20 EM starts failed"):
            fit = fit_em(X, k, covariance_type="EVV", init="kmeans", random_seed=0)
        assert fit.log_likelihood >= mclust_loglik(ref, "EVV", k) - LOGLIK_TOL


def test_options_of_the_hierarchical_start_are_checked():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match=r"hc_use must be one of \('SVD', 'VARS'\); got 'svd'"):
        fit_em(X, 2, hc_use="svd")
    with pytest.raises(ValueError, match=r"init_sample_size must be an integer >= 1; got 0"):
        fit_em(X, 2, init_sample_size=0)
    big = np.random.default_rng(0).normal(size=(25_000, 2))
    with pytest.raises(
        ValueError, match=r"init_sample_size must be at most 20000 .* got init_sample_size=25000"
    ):
        fit_em(big, 2, init_sample_size=25_000)
