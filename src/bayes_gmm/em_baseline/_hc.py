"""Model-based agglomerative hierarchical clustering, the start R's mclust gives every EM fit.

Fraley (1998) merges, at each step, the two clusters whose merge lowers the classification likelihood of
an unconstrained-covariance (VVV) Gaussian model the least. With ``n_c`` points (or total weight) in
cluster ``c``, ``W_c`` the scatter of its points around their mean and ``p`` the number of features, the
criterion mclust's ``hc(modelName = "VVV")`` minimises is the sum over clusters of

    term(c) = n_c log( det(W_c / n_c) + beta (tr(W_c) + alpha) / n_c ),

with ``det(W_c / n_c)`` taken as 0 while ``n_c <= p`` (the scatter is singular), ``beta = 1`` and ``alpha``
the mean variance per feature of all the data: a merge costs ``term(a + b) - term(a) - term(b)``. The
``alpha`` and ``tr`` terms keep small clusters, whose scatter is singular, from having an infinite
likelihood; without them the criterion is the classification likelihood of the VVV model.

mclust clusters the data after a transformation (its option ``hcUse``): "SVD", its default, standardises
the features and projects them on their principal axes scaled by the inverse square root of the singular
values, which makes the clustering invariant to the scale of the features and spreads it over the
directions of small variance too; "VARS" uses the data as they are. (mclust's Fortran code records, for
some merges of clusters of more than ``p + 1`` points, a cost other than the criterion gives; on data
clustered as they are its trees can differ from these, on the SVD-transformed data of the test fixtures they
agree: tests/data/mclust/README.md.)

Every merge is found exactly (the two clusters of least cost among all pairs). The costs of all pairs are
held in an (m, m) matrix for m distinct points (O(m^2) memory) and each row's least cost is cached, so that
a merge recomputes the costs of the merged cluster only, O(m p^3); the tree of m points costs
O(m^2 p^3) time. Large data are clustered on a random subset of their rows (see :func:`hc_start`).

A tree depends only on the points, their weights and the transformation, and ``search_models`` asks for the
same data's tree once per covariance model and number of components: the last few trees are kept
(:data:`TREES_KEPT`) and cut again at each K.

References
----------
C. Fraley (1998), "Algorithms for model-based Gaussian hierarchical clustering", *SIAM Journal on
Scientific Computing* 20, 270-281. L. Scrucca and A. E. Raftery (2015), "Improved initialisation of
model-based clustering using Gaussian hierarchical partitions", *Advances in Data Analysis and
Classification* 9, 447-460 (the SVD transformation).
"""

from __future__ import annotations

import collections
import hashlib
import math
import threading
from typing import NamedTuple

import numpy as np

from bayes_gmm._numba_cache import kernel_njit

#: mclust's transformations of the data before the clustering (its ``hcUse`` option).
HC_TRANSFORMS = ("SVD", "VARS")
#: Data with more rows (of positive weight) are clustered on a random subset of this many rows, as mclust
#: does (its option ``subset``); the time grows as the square of it, the memory too (32 MB at 2,000).
HC_SAMPLE_SIZE = 2000
#: Number of recent trees kept for reuse.
TREES_KEPT = 8
_BETA = 1.0


@kernel_njit()
def _merged_term(a, b, size, means, scatter, trace, alpha, diff, work):
    """term() of the union of clusters a and b, and its tr(W); `diff` (p,) and `work` (p, p) are scratch."""
    n_features = means.shape[1]
    n = size[a] + size[b]
    factor = size[a] * size[b] / n
    tr = trace[a] + trace[b]
    for i in range(n_features):
        diff[i] = means[a, i] - means[b, i]
        tr += factor * diff[i] * diff[i]
    b_term = _BETA * (tr + alpha) / n
    if n <= n_features:
        return n * math.log(b_term), tr
    # det(W / n) as the product of the pivots of an LDL^T factorisation (lower triangle of `work`: L below
    # the diagonal, the pivots on it); a singular W adds nothing.
    for j in range(n_features):
        for i in range(j, n_features):
            work[i, j] = (scatter[a, i, j] + scatter[b, i, j] + factor * diff[i] * diff[j]) / n
    det = 1.0
    for j in range(n_features):
        pivot = work[j, j]
        for k in range(j):
            pivot -= work[j, k] * work[j, k] * work[k, k]
        if not pivot > 0.0:
            return n * math.log(b_term), tr
        work[j, j] = pivot
        det *= pivot
        for i in range(j + 1, n_features):
            value = work[i, j]
            for k in range(j):
                value -= work[i, k] * work[j, k] * work[k, k]
            work[i, j] = value / pivot
    if det < 1e300:
        return n * math.log(det + b_term), tr
    log_det = 0.0  # the product overflowed: add the logarithms of the pivots
    for j in range(n_features):
        log_det += math.log(work[j, j])
    return n * (log_det + math.log1p(b_term * math.exp(-log_det))), tr


@kernel_njit()
def _pair_term(a, b, size, means, alpha, n_features):
    """term() of the union of two clusters of coincident points (scatter 0): the merged scatter has rank 1,
    so det(W / n) is 0 for p > 1 and tr(W) / n for p = 1."""
    n = size[a] + size[b]
    tr = 0.0
    for i in range(n_features):
        d = means[a, i] - means[b, i]
        tr += d * d
    tr *= size[a] * size[b] / n
    det = tr / n if n_features == 1 and n > 1.0 else 0.0
    return n * math.log(det + _BETA * (tr + alpha) / n)


@kernel_njit()
def _factor_scatter(a, size, scatter, chol):
    """The Cholesky factor of cluster a's scatter W_a in the lower triangle of `chol`; returns det(W_a),
    or 0 where W_a is singular or its determinant far from 1 (the callers then factor each union)."""
    n_features = chol.shape[0]
    if size[a] <= n_features:
        return 0.0
    det = 1.0
    for j in range(n_features):
        pivot = scatter[a, j, j]
        for k in range(j):
            pivot -= chol[j, k] * chol[j, k]
        if not pivot > 0.0:
            return 0.0
        det *= pivot
        root = math.sqrt(pivot)
        chol[j, j] = root
        for i in range(j + 1, n_features):
            value = scatter[a, i, j]
            for k in range(j):
                value -= chol[i, k] * chol[j, k]
            chol[i, j] = value / root
    return det if 1e-250 < det < 1e250 else 0.0


@kernel_njit()
def _term_with_point(a, i, size, means, trace, alpha, chol, det_a, u):
    """term() of the union of cluster a (scatter W_a = L L^T, L in `chol`, det(W_a) = `det_a` > 0) and a
    cluster i of coincident points: W = W_a + f d d^T, so det(W) = det(W_a) (1 + f |L^-1 d|^2)."""
    n_features = chol.shape[0]
    n = size[a] + size[i]
    factor = size[a] * size[i] / n
    tr = 0.0
    quadratic = 0.0
    for j in range(n_features):  # forward substitution L u = d
        d = means[a, j] - means[i, j]
        tr += d * d
        value = d
        for k in range(j):
            value -= chol[j, k] * u[k]
        u[j] = value / chol[j, j]
        quadratic += u[j] * u[j]
    tr = trace[a] + factor * tr
    det = det_a * (1.0 + factor * quadratic)
    for _ in range(n_features):
        det /= n
    return n * math.log(det + _BETA * (tr + alpha) / n)


@kernel_njit()
def _row_minimum(place, cost, alive, n_alive):
    """The least cost of cluster ``alive[place]`` to the clusters after it in `alive`, and that cluster
    (-1 if none)."""
    i = alive[place]
    best, where = np.inf, -1
    for other in range(place + 1, n_alive):
        j = alive[other]
        if cost[i, j] < best:
            best, where = cost[i, j], j
    return best, where


@kernel_njit()
def _hc_merges(points, size, alpha):
    """Every merge of the VVV hierarchical clustering of `points` (m, p) with multiplicities `size` (m,).

    Returns (merges, costs): merge t joins cluster ``merges[t, 1]`` into ``merges[t, 0]`` (the smaller
    index, which names the union from then on) at cost ``costs[t]``; cluster i starts as point i.
    ``cost[i, j]`` (i < j) holds the cost of merging clusters i and j; each cluster caches the least cost
    to a cluster of larger index (`least`, `nearest`), so that the least of all is a scan of the clusters.
    """
    n_points, n_features = points.shape
    size = size.copy()
    means = points.copy()
    scatter = np.zeros((n_points, n_features, n_features))
    trace = np.zeros(n_points)
    term = np.empty(n_points)
    for i in range(n_points):
        # A point of multiplicity n: n coincident points, whose scatter is 0.
        term[i] = size[i] * math.log(_BETA * alpha / size[i])
    diff = np.empty(n_features)
    work = np.empty((n_features, n_features))
    chol = np.zeros((n_features, n_features))
    cost = np.empty((n_points, n_points))
    for i in range(n_points):
        for j in range(i + 1, n_points):
            cost[i, j] = _pair_term(i, j, size, means, alpha, n_features) - term[i] - term[j]
    alive = np.arange(n_points)  # the clusters left, in increasing order; place[i]: i's index in it
    place = np.arange(n_points)
    n_alive = n_points
    nearest = np.full(n_points, -1)
    least = np.full(n_points, np.inf)
    for i in range(n_points):
        least[i], nearest[i] = _row_minimum(i, cost, alive, n_alive)
    merges = np.empty((max(n_points - 1, 0), 2), dtype=np.int64)
    costs = np.empty(max(n_points - 1, 0))
    for step in range(n_points - 1):
        a = alive[0]
        for k in range(1, n_alive - 1):
            if least[alive[k]] < least[a]:
                a = alive[k]
        b = nearest[a]
        merges[step, 0], merges[step, 1], costs[step] = a, b, least[a]
        merged, tr = _merged_term(a, b, size, means, scatter, trace, alpha, diff, work)
        n = size[a] + size[b]
        factor = size[a] * size[b] / n
        for i in range(n_features):
            for j in range(n_features):
                scatter[a, i, j] += scatter[b, i, j] + factor * diff[i] * diff[j]
            means[a, i] = (size[a] * means[a, i] + size[b] * means[b, i]) / n
        size[a], trace[a], term[a] = n, tr, merged
        before_b = place[b]  # the clusters of smaller index than b are alive[:before_b]
        for k in range(before_b, n_alive - 1):  # b leaves the list
            alive[k] = alive[k + 1]
            place[alive[k]] = k
        n_alive -= 1
        det_a = _factor_scatter(a, size, scatter, chol)
        for k in range(n_alive):
            i = alive[k]
            if i == a:
                continue
            if det_a > 0.0 and trace[i] == 0.0:  # most clusters are single points for most of the merges
                pair = _term_with_point(a, i, size, means, trace, alpha, chol, det_a, diff)
            else:
                pair, _ = _merged_term(a, i, size, means, scatter, trace, alpha, diff, work)
            lo, hi = min(i, a), max(i, a)
            cost[lo, hi] = pair - term[a] - term[i]
        # Cached least costs that may have changed (those of clusters after b cannot): a's own; those whose
        # least was to b (gone) or to a (a rescan only if a's cost rose: the rest of the row is unchanged);
        # those that a's new cost undercuts (ties go to the smaller index, as in a rescan).
        for k in range(before_b):
            i = alive[k]
            if i == a or nearest[i] == b or (nearest[i] == a and cost[i, a] > least[i]):
                least[i], nearest[i] = _row_minimum(k, cost, alive, n_alive)
            elif i < a and (cost[i, a] < least[i] or (cost[i, a] == least[i] and a < nearest[i])):
                least[i], nearest[i] = cost[i, a], a
            elif nearest[i] == a:
                least[i] = cost[i, a]
    return merges, costs


def cut_tree(merges: np.ndarray, n_points: int, n_clusters: int) -> np.ndarray:
    """Labels 0..n_clusters-1 of the points after the first ``n_points - n_clusters`` merges.

    Clusters are numbered in the order of their first point.
    """
    parent = np.arange(n_points)
    for a, b in merges[: n_points - n_clusters]:
        parent[b] = a
    for i in range(n_points):  # a < b in every merge, so each parent is settled before its children
        parent[i] = parent[parent[i]]
    return np.unique(parent, return_inverse=True)[1]


def transform(X: np.ndarray, use: str, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """The data as mclust's ``hc`` clusters them (``use``: "SVD" or "VARS", see the module's docstring).

    "SVD": centre and scale each feature to unit (weighted) standard deviation, dropping constant ones, and
    return ``Xs V diag(1 / sqrt(s))`` for the singular value decomposition ``Xs = U diag(s) V^T`` (directions
    of zero singular value dropped). With `sample_weight`, a row of weight g counts as g rows.
    """
    if use == "VARS":
        return X
    weights = np.ones(len(X)) if sample_weight is None else sample_weight
    total = weights.sum()
    centred = X - weights @ X / total
    variances = weights @ centred**2 / (total - 1.0 if total > 1.0 else total)
    scaled = centred[:, variances > 0.0] / np.sqrt(variances[variances > 0.0])
    _, singular, vt = np.linalg.svd(np.sqrt(weights)[:, None] * scaled, full_matrices=False)
    kept = singular > singular[:1] * max(scaled.shape) * np.finfo(float).eps
    return scaled @ vt[kept].T / np.sqrt(singular[kept])


class _Trees:
    """The last :data:`TREES_KEPT` trees, keyed by a digest of the points, weights and transformation."""

    def __init__(self):
        self._trees = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, X, sample_weight, use):
        digest = hashlib.blake2b(use.encode(), digest_size=20)
        for array in (X, sample_weight):
            if array is not None:
                digest.update(repr(array.shape).encode())
                digest.update(np.ascontiguousarray(array).tobytes())
        key = digest.digest()
        with self._lock:
            if key in self._trees:
                self._trees.move_to_end(key)
                return self._trees[key]
        tree = _grow(X, sample_weight, use)
        with self._lock:
            self._trees[key] = tree
            while len(self._trees) > TREES_KEPT:
                self._trees.popitem(last=False)
        return tree

    def clear(self):
        """Forget every tree (benchmarks time the clustering itself this way)."""
        with self._lock:
            self._trees.clear()


class Tree(NamedTuple):
    """A hierarchical clustering of the rows of some data: their distinct rows (points) are clustered.

    Attributes
    ----------
    point_of_row : ndarray of shape (n_rows,)
        The distinct row (point) each row is.
    merges : ndarray of shape (n_points - 1, 2)
        Merge t joins cluster ``merges[t, 1]`` into ``merges[t, 0]`` (clusters named by their first point,
        points in the order of :func:`numpy.unique`).
    costs : ndarray of shape (n_points - 1,)
        The criterion's cost of each merge (see the module's docstring).
    alpha : float
        The criterion's alpha.
    """

    point_of_row: np.ndarray
    merges: np.ndarray
    costs: np.ndarray
    alpha: float

    @property
    def n_points(self) -> int:
        return len(self.merges) + 1


def _grow(X, sample_weight, use) -> Tree:
    """The clustering of the rows of X (see :func:`hc_tree`)."""
    # Coincident rows start as one cluster (mclust's dupPartition) of their summed weight.
    points, inverse = np.unique(X, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    size = np.bincount(inverse, weights=sample_weight, minlength=len(points)).astype(np.float64)
    if len(points) == 1:
        return Tree(inverse, np.empty((0, 2), dtype=np.int64), np.empty(0), np.nan)
    Z = transform(points, use, size)
    centred = Z - size @ Z / size.sum()
    # mclust: alpha = tr(W) / (n p) of all the data, floored at machine epsilon.
    alpha = float(size @ np.einsum("ij,ij->i", centred, centred)) / (size.sum() * Z.shape[1])
    alpha = max(alpha, np.finfo(float).eps)
    merges, costs = _hc_merges(np.ascontiguousarray(Z), size, alpha)
    return Tree(inverse, merges, costs, alpha)


_TREES = _Trees()


def hc_tree(X: np.ndarray, *, use: str = "SVD", sample_weight=None) -> Tree:
    """The VVV hierarchical clustering of the rows of `X` (kept for reuse, see :data:`TREES_KEPT`).

    `use` names the transformation (:data:`HC_TRANSFORMS`); a row of weight g in `sample_weight` counts as
    g coincident rows. Rows of weight 0 must have been left out.
    """
    return _TREES.get(np.ascontiguousarray(X, dtype=np.float64), sample_weight, use)


def hc_labels(X: np.ndarray, n_clusters: int, *, use: str = "SVD", sample_weight=None) -> np.ndarray | None:
    """The VVV hierarchical clustering of the rows of `X` cut at `n_clusters`: labels 0..n_clusters-1.

    Returns None when `X` has fewer distinct rows than `n_clusters`.
    """
    tree = hc_tree(X, use=use, sample_weight=sample_weight)
    if tree.n_points < n_clusters:
        return None
    return cut_tree(tree.merges, tree.n_points, n_clusters)[tree.point_of_row]


def hc_start(X, n_components, rng, *, use="SVD", sample_size=HC_SAMPLE_SIZE, sample_weight=None):
    """The rows the hierarchical start is made on and their labels, ``(rows, labels)``, or None.

    The rows are those of positive weight; if there are more than `sample_size` of them, a uniform random
    subset of `sample_size` drawn from `rng`. None if they hold fewer than `n_components` distinct points.
    """
    rows = np.arange(len(X)) if sample_weight is None else np.flatnonzero(sample_weight > 0)
    if len(rows) > sample_size:
        rows = np.sort(rng.choice(rows, sample_size, replace=False))
    weights = None if sample_weight is None else sample_weight[rows]
    if weights is not None and np.all(weights == weights[0]):
        weights = None  # equal weights give the unweighted clustering
    labels = hc_labels(X[rows], n_components, use=use, sample_weight=weights)
    return None if labels is None else (rows, labels)
