"""Expected losses of partitions under the posterior, and the point partition that minimises them.

One job: score candidate partitions against the posterior similarity matrix ``P`` and pick the best.
Binder's loss with equal costs (:func:`binder_loss`) and Wade & Ghahramani's lower-bound criterion for the
expected variation of information (:func:`expected_vi_lower_bound`) are both computable from ``P`` alone
(Wade & Ghahramani 2018); :func:`point_partition` returns the candidate of least expected loss as a
:class:`PartitionEstimate`. Expected losses of many candidates are computed from ``P @ Z`` (``Z`` the
one-hot indicator of a chunk of candidates), never from ``n_obs x n_obs`` indicator matrices.

References
----------
Binder, D. A. (1978). Bayesian cluster analysis. *Biometrika* 65(1), 31-38.

Fritsch, A. & Ickstadt, K. (2009). Improved criteria for clustering based on the posterior similarity
matrix. *Bayesian Analysis* 4(2), 367-391.

Wade, S. & Ghahramani, Z. (2018). Bayesian cluster analysis: point estimation and credible balls.
*Bayesian Analysis* 13(2), 559-626.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_gmm.inference._partition_canonical import (
    ORDERS,
    _dense_codes,
    _unique_rows,
    canonicalize_partitions,
)
from bayes_gmm.inference._partition_checks import _CHUNK_BYTES, _check_partitions, _check_similarity

__all__ = ["PartitionEstimate", "binder_loss", "expected_vi_lower_bound", "point_partition"]

LOSSES = ("binder", "vi")


# --------------------------------------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PartitionEstimate:
    """A point estimate of the clustering: the candidate partition of least expected loss.

    Attributes
    ----------
    labels : ndarray of shape (n_obs,)
        Cluster labels ``0 .. n_clusters - 1``, relabelled as requested (by decreasing cluster size, or
        in order of first appearance). Read-only.
    loss : float
        Expected loss of `labels` under the posterior (see `loss_name`).
    loss_name : {"binder", "vi"}
        ``"binder"``: expected Binder loss with equal costs, summed over pairs ``i < j``
        (:func:`binder_loss`); ``"vi"``: lower-bound criterion for the expected variation of
        information, in bits (:func:`expected_vi_lower_bound`).
    n_clusters : int
        Number of clusters in `labels`.
    candidate_index : int
        Row of the `candidates` array that was chosen (the first one, if several tie).
    candidate_losses : ndarray of shape (n_candidates,)
        Expected loss of every candidate, in the order given. Read-only.
    n_unique_candidates : int
        Number of distinct partitions among the candidates (equal up to relabelling counts once).
    """

    labels: np.ndarray
    loss: float
    loss_name: str
    n_clusters: int
    candidate_index: int
    candidate_losses: np.ndarray
    n_unique_candidates: int


# --------------------------------------------------------------------------------------------------------
# Expected losses
# --------------------------------------------------------------------------------------------------------


def binder_loss(partition, similarity, *, normalize: bool = False):
    """Expected Binder loss (equal costs) of a partition under the posterior.

    ``E[B(c)] = sum_{i<j} |1(c_i = c_j) - P[i, j]|``: each pair put together costs the posterior
    probability that it is apart, and each pair put apart costs the probability that it is together
    (Binder 1978 with ``a = b = 1``; ``sum_{i<j}`` as in R's ``mcclust::binder``).

    Parameters
    ----------
    partition : array_like of int, shape (n_obs,) or (n_partitions, n_obs)
        Candidate partition(s); any integer labels.
    similarity : array_like of shape (n_obs, n_obs)
        Posterior similarity matrix, e.g. from :func:`co_clustering_matrix`.
    normalize : bool, default False
        Divide by the number of pairs ``n_obs * (n_obs - 1) / 2``, giving the expected fraction of pairs
        misclassified, in [0, 1].

    Returns
    -------
    float or ndarray of shape (n_partitions,)
        A float for a 1-D `partition`, an array for a 2-D one.

    Raises
    ------
    ValueError
        If `similarity` is not a square symmetric matrix with unit diagonal and entries in [0, 1], if
        `partition` is not 1-D or 2-D integer labels, or if the sizes do not match.

    Notes
    -----
    Computed as ``sum_{i<j} P[i, j] + sum_{i<j} 1(c_i = c_j) (1 - 2 P[i, j])``, where the second sum
    needs only ``(P @ Z)`` for the one-hot indicator ``Z`` of the partition: ``n_obs**2 * n_clusters``
    operations per partition and no ``n_obs x n_obs`` indicator.

    Examples
    --------
    >>> import numpy as np
    >>> sim = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    >>> round(binder_loss([0, 0, 1], sim), 10)  # 0.1 + 0.1 + 0.2
    0.4
    """
    if not isinstance(normalize, bool | np.bool_):
        raise TypeError(f"normalize must be True or False; got {normalize!r}.")
    sim = _check_similarity(similarity)
    labels, single = _check_partitions(partition, n_obs=sim.shape[0], name="partition")
    codes, n_clusters = _dense_codes(labels)
    losses = _expected_losses(codes, n_clusters, sim, loss="binder")
    if normalize:
        n_pairs = sim.shape[0] * (sim.shape[0] - 1) / 2
        losses = losses / n_pairs if n_pairs > 0 else np.zeros_like(losses)
    return float(losses[0]) if single else losses


def expected_vi_lower_bound(partition, similarity):
    """Wade & Ghahramani's lower-bound criterion for the expected variation of information (VI).

    The expected VI of a partition ``c``, ``E[VI(c, c')]`` over the posterior of ``c'``, needs the posterior
    of whole partitions. Writing VI pointwise and swapping each expectation with the logarithm gives a
    criterion that needs only the posterior similarity matrix ``P`` (``P[i, i] = 1``; Wade & Ghahramani
    2018, Section 4.1):

    ``VI_LB(c) = (1/N) sum_i [ log2 sum_j 1(c_j = c_i) - 2 log2 sum_j 1(c_j = c_i) P[i, j]
    + log2 sum_j P[i, j] ]``.

    This is what :func:`point_partition` minimises for ``loss="vi"``; it is the same quantity as R's
    ``mcclust.ext::VI.lb`` (base-2 logarithms, so the unit is bits).

    Parameters
    ----------
    partition : array_like of int, shape (n_obs,) or (n_partitions, n_obs)
        Candidate partition(s); any integer labels.
    similarity : array_like of shape (n_obs, n_obs)
        Posterior similarity matrix, e.g. from :func:`co_clustering_matrix`.

    Returns
    -------
    float or ndarray of shape (n_partitions,)
        Non-negative; a float for a 1-D `partition`, an array for a 2-D one.

    Raises
    ------
    ValueError
        If `similarity` is not a square symmetric matrix with unit diagonal and entries in [0, 1], if
        `partition` is not 1-D or 2-D integer labels, or if the sizes do not match.

    Notes
    -----
    This is not the expected VI itself. By Jensen's inequality the swap lowers the only term that depends
    on ``c`` (the cross term), which is why the paper calls the criterion a lower bound; the last term,
    the same for every ``c``, moves the other way, so the total is not guaranteed to lie below the
    expected VI. What holds is ``VI_LB(c) - g <= E[VI(c, c')]``, where
    ``g = (1/N) sum_i (log2 E[n'_i] - E[log2 n'_i]) >= 0`` (``n'_i`` the size of the cluster of ``i`` in
    ``c'``) does not depend on ``c``. The minimisers of the criterion and of the expected VI usually
    agree closely (Wade & Ghahramani 2018), and no per-draw partitions need to be stored. When the
    posterior is certain (``P`` a 0/1 co-clustering matrix) the criterion equals the VI to that partition.

    Examples
    --------
    >>> import numpy as np
    >>> sim = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> float(expected_vi_lower_bound([0, 0, 1], sim))  # certain posterior, exact partition: no loss
    0.0
    """
    sim = _check_similarity(similarity)
    labels, single = _check_partitions(partition, n_obs=sim.shape[0], name="partition")
    codes, n_clusters = _dense_codes(labels)
    losses = _expected_losses(codes, n_clusters, sim, loss="vi")
    return float(losses[0]) if single else losses


def _expected_losses(codes: np.ndarray, n_clusters: np.ndarray, sim: np.ndarray, *, loss: str) -> np.ndarray:
    """Expected losses of partitions given as dense codes (C, N) with `n_clusters` (C,) clusters each.

    Both losses need, for every point ``i`` of every partition, its cluster size ``n_i`` and the
    within-cluster similarity ``t_i = sum_{j in cluster(i)} P[i, j]`` (including ``P[i, i] = 1``). ``t`` comes
    from ``P @ Z`` with ``Z`` the one-hot indicator of a chunk of partitions laid side by side.
    """
    n_parts, n_obs = codes.shape
    if loss == "binder":
        pair_sum = 0.5 * (float(np.sum(sim)) - float(np.trace(sim)))  # sum_{i<j} P[i, j]
    else:
        log2_rowsum = float(np.sum(np.log2(np.sum(sim, axis=1))))

    max_cols = max(1, _CHUNK_BYTES // (8 * n_obs))
    out = np.empty(n_parts)
    col_index = np.arange(n_obs)
    start = 0
    while start < n_parts:
        # Take partitions while their clusters fit in the column budget (at least one partition).
        widths = np.cumsum(n_clusters[start:])
        stop = start + max(1, int(np.searchsorted(widths, max_cols, side="right")))
        block_clusters = n_clusters[start:stop]
        offsets = np.concatenate(([0], np.cumsum(block_clusters)[:-1]))
        cols = codes[start:stop] + offsets[:, None]  # (c, N): column of point i's cluster
        total = int(block_clusters.sum())

        onehot = np.zeros((n_obs, total))
        onehot[col_index[None, :], cols] = 1.0
        within = (sim @ onehot)[col_index[None, :], cols]  # t, (c, N)
        sizes = np.bincount(cols.ravel(), minlength=total)[cols].astype(np.float64)  # n_i, (c, N)

        if loss == "binder":
            # sum_{i<j} 1(c_i = c_j)(1 - 2 P_ij) = (sum_i n_i - 2 sum_i t_i + sum_i (2 P_ii - 1)) / 2
            diag_term = float(np.sum(2.0 * np.diagonal(sim) - 1.0))
            out[start:stop] = pair_sum + 0.5 * (sizes.sum(axis=1) - 2.0 * within.sum(axis=1) + diag_term)
        else:
            vi = np.sum(np.log2(sizes), axis=1) - 2.0 * np.sum(np.log2(within), axis=1) + log2_rowsum
            out[start:stop] = np.maximum(vi / n_obs, 0.0)  # >= 0 exactly; clip rounding
        start = stop
    return out


# --------------------------------------------------------------------------------------------------------
# Point estimate
# --------------------------------------------------------------------------------------------------------


def point_partition(
    similarity, candidates, *, loss: str = "binder", order: str = "size"
) -> PartitionEstimate:
    """Choose the candidate partition of least expected loss under the posterior.

    Parameters
    ----------
    similarity : array_like of shape (n_obs, n_obs)
        Posterior similarity matrix, e.g. from :func:`co_clustering_matrix`.
    candidates : array_like of int, shape (n_candidates, n_obs) or (n_obs,)
        Candidate partitions (any integer labels), e.g. from :func:`candidate_partitions`. Partitions equal
        up to relabelling are evaluated once.
    loss : {"binder", "vi"}, default "binder"
        ``"binder"``: expected Binder loss with equal costs (:func:`binder_loss`). ``"vi"``: Wade &
        Ghahramani's (2018) lower-bound criterion for the expected variation of information
        (:func:`expected_vi_lower_bound`); unlike Binder's loss it does not tend to add small extra
        clusters when memberships are uncertain.
    order : {"size", "first"}, default "size"
        How the returned labels are numbered: ``"size"``, 0 for the largest cluster (ties by first
        appearance); ``"first"``, in order of first appearance.

    Returns
    -------
    PartitionEstimate
        `labels`, `loss`, `loss_name`, `n_clusters`, `candidate_index`, `candidate_losses` and
        `n_unique_candidates`.

    Raises
    ------
    ValueError
        If `loss` or `order` is unknown, `similarity` is not a valid similarity matrix, or `candidates` is
        not integer labels with one column per row of `similarity`.

    Notes
    -----
    The estimate is the best of the candidates only, not a global minimiser of the expected loss; include
    varied candidates (sampled, per-draw argmax and hierarchical cuts of the similarity matrix, as
    :func:`candidate_partitions` does). Cost: ``n_obs**2 * sum(n_clusters)`` over distinct candidates.

    Examples
    --------
    >>> import numpy as np
    >>> sim = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    >>> est = point_partition(sim, [[0, 1, 2], [3, 3, 4], [0, 0, 0]])
    >>> est.labels.tolist(), est.candidate_index
    ([0, 0, 1], 1)
    """
    if loss not in LOSSES:
        raise ValueError(
            f"loss must be one of {LOSSES}; got {loss!r}. Use 'binder' for Binder's loss with equal costs "
            f"or 'vi' for the lower bound of the expected variation of information."
        )
    if order not in ORDERS:
        raise ValueError(
            f"order must be one of {ORDERS}; got {order!r}. Use 'size' to number clusters by decreasing "
            f"size or 'first' to number them by first appearance."
        )
    sim = _check_similarity(similarity)
    labels, _ = _check_partitions(candidates, n_obs=sim.shape[0], name="candidates")

    canonical = canonicalize_partitions(labels, order="first")
    n_unique, first_index, inverse = _unique_rows(canonical)
    codes = canonical[first_index]
    n_clusters = codes.max(axis=1) + 1
    unique_losses = _expected_losses(codes, n_clusters, sim, loss=loss)

    best = np.flatnonzero(unique_losses == unique_losses.min())
    best_unique = best[np.argmin(first_index[best])]  # ties: earliest candidate
    chosen = int(first_index[best_unique])
    out_labels = canonicalize_partitions(labels[chosen], order=order)
    out_labels.setflags(write=False)
    candidate_losses = unique_losses[inverse]
    candidate_losses.setflags(write=False)
    return PartitionEstimate(
        labels=out_labels,
        loss=float(unique_losses[best_unique]),
        loss_name=loss,
        n_clusters=int(n_clusters[best_unique]),
        candidate_index=chosen,
        candidate_losses=candidate_losses,
        n_unique_candidates=int(n_unique),
    )
