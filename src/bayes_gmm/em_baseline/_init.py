"""Starting responsibilities for EM: k-means++ seeding, k-means (Lloyd), or random.

Each function returns an (n_samples, n_components) responsibility matrix whose rows sum to one; the first
M-step turns it into weights, means and covariances.
"""

from __future__ import annotations

import numpy as np

#: fit_em's start methods; "hc" (the hierarchical start) is made in :mod:`bayes_gmm.em_baseline._hc`.
INIT_METHODS = ("hc", "kmeans", "kmeans++", "random")


def _squared_distances(X, centers, x_sq_norms):
    sq = x_sq_norms[:, np.newaxis] - 2.0 * (X @ centers.T) + np.sum(centers**2, axis=1)[np.newaxis]
    return np.maximum(sq, 0.0)


def _draw(cumulative, rng, size):
    """Indices drawn with probabilities proportional to the increments of `cumulative`."""
    return np.minimum(np.searchsorted(cumulative, rng.random(size) * cumulative[-1]), len(cumulative) - 1)


def _unless_uniform(sample_weight):
    """`sample_weight` as an array, or None where it is None or every weight is the same.

    Equal weights give every point the same probability, so they draw exactly what no weights draw.
    """
    if sample_weight is None:
        return None
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    return None if np.all(sample_weight == sample_weight[0]) else sample_weight


def kmeans_plusplus(X, n_components, rng, *, x_sq_norms=None, sample_weight=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007), as in scikit-learn.

    Each new center is the best of ``2 + log(k)`` candidates drawn with probability proportional to the
    squared distance to the nearest existing center. With `sample_weight` (n_samples,), every probability
    and the candidates' potential are weighted too (a point of weight 3 counts as three copies). Equal
    weights (all the same, e.g. ``np.ones(n_samples)``) draw the same centers as no weights from the same
    `rng`.

    Returns
    -------
    centers : ndarray of shape (n_components, n_features)
    """
    n_samples = X.shape[0]
    sample_weight = _unless_uniform(sample_weight)
    if x_sq_norms is None:
        x_sq_norms = np.einsum("ij,ij->i", X, X)
    weighted = sample_weight is not None
    n_trials = 2 + int(np.log(n_components))
    centers = np.empty((n_components, X.shape[1]))
    centers[0] = X[_draw(np.cumsum(sample_weight), rng, None) if weighted else rng.integers(n_samples)]
    closest = _squared_distances(X, centers[:1], x_sq_norms)[:, 0]
    for c in range(1, n_components):
        potential = closest * sample_weight if weighted else closest
        total = potential.sum()
        if total <= 0.0:  # fewer distinct points than components: any point will do
            if weighted:
                candidates = _draw(np.cumsum(sample_weight), rng, n_trials)
            else:
                candidates = rng.integers(n_samples, size=n_trials)
        else:
            candidates = np.searchsorted(np.cumsum(potential), rng.random(n_trials) * total)
            candidates = np.minimum(candidates, n_samples - 1)
        dist = np.minimum(closest[:, np.newaxis], _squared_distances(X, X[candidates], x_sq_norms))
        scores = (sample_weight @ dist) if weighted else dist.sum(axis=0)
        best = int(np.argmin(scores))
        centers[c] = X[candidates[best]]
        closest = dist[:, best]
    return centers


def kmeans_labels(X, n_components, rng, *, max_iter=300, sample_weight=None):
    """Lloyd's k-means from k-means++ seeds; returns the final hard labels, shape (n_samples,).

    With `sample_weight` (n_samples,), the seeding and the centers (weighted means) are weighted; equal
    weights give the same labels as none.
    """
    sample_weight = _unless_uniform(sample_weight)
    x_sq_norms = np.einsum("ij,ij->i", X, X)
    centers = kmeans_plusplus(X, n_components, rng, x_sq_norms=x_sq_norms, sample_weight=sample_weight)
    labels = np.argmin(_squared_distances(X, centers, x_sq_norms), axis=1)
    for _ in range(max_iter):
        if sample_weight is None:
            counts = np.bincount(labels, minlength=n_components)
            sums = np.stack([np.bincount(labels, weights=x, minlength=n_components) for x in X.T], axis=1)
        else:
            counts = np.bincount(labels, weights=sample_weight, minlength=n_components)
            sums = np.stack(
                [np.bincount(labels, weights=x * sample_weight, minlength=n_components) for x in X.T], axis=1
            )
        occupied = counts > 0
        centers[occupied] = sums[occupied] / counts[occupied, np.newaxis]  # an empty cluster keeps its center
        new_labels = np.argmin(_squared_distances(X, centers, x_sq_norms), axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return labels


def _r_quantiles(sorted_x, levels):
    """R's ``quantile(x, levels)`` (type 7), with its rounding: R's 1-based index ``1 + (n - 1) p``."""
    index = 1.0 + (len(sorted_x) - 1) * levels
    lo = np.floor(index).astype(np.int64)
    fraction = index - lo
    low, high = sorted_x[lo - 1], sorted_x[np.minimum(lo, len(sorted_x) - 1)]
    between = (index > lo) & (high != low)
    return np.where(between, (1.0 - fraction) * low + fraction * high, low)


def quantile_labels(x, n_components, sample_weight=None):
    """R mclust's start for one feature (its ``qclass``): classes between quantiles of `x`, shape (n,).

    The ``k + 1`` cut points are the distinct quantiles at ``n + 1`` equally spaced levels for the least
    ``n >= k`` that gives at least ``k + 1`` of them; where there are more, the left ends of the shortest
    gaps are dropped (ties in order). Quantiles are R's default (type 7, linear interpolation, computed as
    R does); with unequal `sample_weight`, the weighted inverse of the empirical distribution function. Points equal
    to a cut point go to the class above it. Data with fewer distinct values than `n_components` give
    fewer classes.
    """
    x = np.asarray(x, dtype=np.float64)
    weights = _unless_uniform(sample_weight)
    order = np.argsort(x, kind="stable")
    cumulative = None if weights is None else np.cumsum(weights[order])
    distinct = len(np.unique(x))
    cuts, n_levels = np.empty(0), n_components
    while len(cuts) < min(n_components, distinct - 1) + 1:
        n_levels += 1
        levels = np.linspace(0.0, 1.0, n_levels)
        if weights is None:
            cuts = np.unique(_r_quantiles(x[order], levels))
        else:
            at = np.searchsorted(cumulative, levels * cumulative[-1], side="left")
            cuts = np.unique(x[order][np.minimum(at, len(x) - 1)])
    surplus = len(cuts) - (n_components + 1)
    if surplus > 0:
        cuts = np.delete(cuts, np.argsort(np.diff(cuts), kind="stable")[:surplus])
    return np.clip(np.searchsorted(cuts, x, side="right") - 1, 0, len(cuts) - 2)


def initial_responsibilities(X, n_components, init, rng, sample_weight=None):
    """Responsibilities to start EM from, for the named `init` method.

    `sample_weight` (n_samples,), if given, weights the k-means++ seeding and k-means; the responsibilities
    themselves are not weighted (the first M-step applies the weights).
    """
    n_samples = X.shape[0]
    if init == "random":
        resp = rng.random((n_samples, n_components))
        return resp / resp.sum(axis=1, keepdims=True)
    if init == "kmeans++":
        centers = kmeans_plusplus(X, n_components, rng, sample_weight=sample_weight)
        labels = np.argmin(_squared_distances(X, centers, np.einsum("ij,ij->i", X, X)), axis=1)
    else:
        labels = kmeans_labels(X, n_components, rng, sample_weight=sample_weight)
    resp = np.zeros((n_samples, n_components))
    resp[np.arange(n_samples), labels] = 1.0
    return resp
