"""Posterior summaries of the clustering itself: co-clustering probabilities and point partitions.

With the discrete assignments marginalised out, each posterior draw ``s`` gives responsibilities
``resp[s, i, k] = P(z_i = k | theta_s, x_i)``. Component labels are arbitrary within a draw (label
switching), so summaries of "which points belong together" are made label-free:

- the posterior similarity (co-clustering) matrix ``P[i, j] = P(z_i = z_j | data)``
  (:func:`co_clustering_matrix`, :func:`co_clustering_from_labels`);
- the expected loss of a candidate partition under that posterior, for Binder's loss with equal costs
  (:func:`binder_loss`) and for Wade & Ghahramani's lower-bound criterion for the expected variation of
  information (:func:`expected_vi_lower_bound`), both computable from ``P`` alone (Wade & Ghahramani 2018);
- the candidate partition of least expected loss (:func:`point_partition`), with helpers that produce
  candidates from the draws (:func:`sample_partitions`, :func:`argmax_partitions`,
  :func:`linkage_partitions`, :func:`candidate_partitions`).

Memory: nothing of shape (n_draws, n_obs, n_obs) is ever formed. ``sum_s R_s R_s^T`` is accumulated over
chunks of draws as one matrix product per chunk, and expected losses of many candidates are computed
from ``P @ Z`` (``Z`` the one-hot indicator of a chunk of candidates), never from ``n_obs x n_obs``
indicator matrices. The similarity matrix itself is ``n_obs x n_obs`` float64 (128 MB for 4,000 points).

References
----------
Binder, D. A. (1978). Bayesian cluster analysis. *Biometrika* 65(1), 31-38.

Fritsch, A. & Ickstadt, K. (2009). Improved criteria for clustering based on the posterior similarity
matrix. *Bayesian Analysis* 4(2), 367-391.

Wade, S. & Ghahramani, Z. (2018). Bayesian cluster analysis: point estimation and credible balls.
*Bayesian Analysis* 13(2), 559-626.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from bayes_gmm._validation import as_float_array, check_nonnegative_float, check_positive_int

__all__ = [
    "PartitionEstimate",
    "argmax_partitions",
    "binder_loss",
    "candidate_partitions",
    "canonicalize_partitions",
    "co_clustering_from_labels",
    "co_clustering_matrix",
    "expected_vi_lower_bound",
    "linkage_partitions",
    "point_partition",
    "sample_partitions",
]

LOSSES = ("binder", "vi")
ORDERS = ("size", "first")
LINKAGE_METHODS = ("average", "complete", "single", "weighted")

# Working-memory budget for one chunk of draws or candidates (bytes of float64 work arrays).
_CHUNK_BYTES = 64 * 2**20
# Tolerance on the structure of a similarity matrix (symmetry, unit diagonal, range).
_SIMILARITY_ATOL = 1e-8


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
# Posterior similarity matrix
# --------------------------------------------------------------------------------------------------------


def co_clustering_matrix(resp, *, atol: float = 1e-6, chunk_size: int | None = None) -> np.ndarray:
    """Posterior similarity matrix ``P(z_i = z_j | data)`` from per-draw responsibilities.

    ``P[i, j] = mean_s sum_k resp[s, i, k] * resp[s, j, k]`` for ``i != j`` and ``P[i, i] = 1``. Because the
    sum over components is taken within each draw, the result does not change when the component labels
    are permuted within any draw, so it is safe under label switching without relabelling.

    Parameters
    ----------
    resp : array_like of shape (n_draws, n_obs, n_components) or (n_chains, n_draws, n_obs, n_components)
        Responsibilities ``P(z_i = k | theta_s, x_i)`` of each posterior draw; each row (over components)
        must sum to 1. A 4-D array has its chain and draw dimensions stacked.
    atol : float, default 1e-6
        Tolerance on the row sums (and on the range [0, 1]) of `resp`.
    chunk_size : int, optional
        Number of draws handled per matrix product. By default chosen so that one chunk's work array
        takes about 64 MB.

    Returns
    -------
    ndarray of shape (n_obs, n_obs)
        Symmetric, unit diagonal, entries in [0, 1].

    Raises
    ------
    ValueError
        If `resp` has the wrong number of dimensions, contains NaN or infinite values, entries outside
        [0, 1], or rows that do not sum to 1 within `atol`.

    See Also
    --------
    co_clustering_from_labels : The same from sampled hard partitions.

    Notes
    -----
    This is the expectation of the co-clustering indicator under the posterior of the assignments given
    the parameters, averaged over parameter draws (Rao-Blackwellised): it has less Monte Carlo noise than
    counting co-occurrences in sampled hard partitions, which estimate the same matrix.

    Cost: ``n_obs**2 * n_draws * n_components`` multiply-adds, done as one BLAS product per chunk.

    Examples
    --------
    >>> import numpy as np
    >>> resp = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
    ...                  [[0.0, 1.0], [0.0, 1.0], [0.5, 0.5]]])
    >>> co_clustering_matrix(resp)
    array([[1.  , 1.  , 0.25],
           [1.  , 1.  , 0.25],
           [0.25, 0.25, 1.  ]])
    """
    resp = _check_resp(resp, atol=atol)
    n_draws, n_obs, n_comp = resp.shape
    chunk = _chunk_size(chunk_size, bytes_per_item=8 * n_obs * n_comp, name="chunk_size")

    acc = np.zeros((n_obs, n_obs))
    for start in range(0, n_draws, chunk):
        block = resp[start : start + chunk]
        # (n_obs, c * K): column (s, k) holds resp[s, :, k]; A @ A.T = sum_s R_s R_s^T.
        a = np.ascontiguousarray(block.transpose(1, 0, 2)).reshape(n_obs, -1)
        acc += a @ a.T
    return _finish_similarity(acc, n_draws)


def co_clustering_from_labels(labels, *, chunk_size: int | None = None) -> np.ndarray:
    """Posterior similarity matrix from sampled hard partitions.

    ``P[i, j]`` is the fraction of draws in which observations ``i`` and ``j`` carry the same label.
    Labels are compared within a draw only, so their numbering may differ between draws.

    Parameters
    ----------
    labels : array_like of int, shape (n_draws, n_obs) or (n_chains, n_draws, n_obs)
        One partition per posterior draw (any integer labels). A 3-D array has its chain and draw
        dimensions stacked.
    chunk_size : int, optional
        Number of draws handled per matrix product; by default about 64 MB of work array per chunk.

    Returns
    -------
    ndarray of shape (n_obs, n_obs)
        Symmetric, unit diagonal, entries in [0, 1] (multiples of ``1 / n_draws``).

    Raises
    ------
    ValueError
        If `labels` is not 2-D or 3-D, or holds non-integer or non-finite values.

    See Also
    --------
    co_clustering_matrix : The lower-variance estimate from responsibilities.

    Notes
    -----
    Cost: ``n_obs**2 * n_draws * m`` multiply-adds, ``m`` the largest number of distinct labels in a draw
    (at most ``n_components`` for partitions sampled from a finite mixture).

    Examples
    --------
    >>> co_clustering_from_labels([[0, 0, 1], [5, 5, 5]])
    array([[1. , 1. , 0.5],
           [1. , 1. , 0.5],
           [0.5, 0.5, 1. ]])
    """
    labels = _as_label_array(labels, name="labels")
    if labels.ndim == 3:
        labels = labels.reshape(-1, labels.shape[-1])
    if labels.ndim != 2:
        raise ValueError(
            f"labels must be 2-D (n_draws, n_obs) or 3-D (n_chains, n_draws, n_obs); got an array with "
            f"{labels.ndim} dimension(s) and shape {labels.shape}. For a single partition use "
            f"labels[None, :]."
        )
    _check_nonempty(labels, name="labels", axes=("n_draws", "n_obs"))
    n_draws, n_obs = labels.shape
    codes, n_clusters = _dense_codes(labels)
    width = int(n_clusters.max())
    chunk = _chunk_size(chunk_size, bytes_per_item=8 * n_obs * width, name="chunk_size")

    acc = np.zeros((n_obs, n_obs))
    rows = np.arange(n_obs)[:, None]
    for start in range(0, n_draws, chunk):
        block = codes[start : start + chunk]  # (c, n_obs)
        onehot = np.zeros((n_obs, block.shape[0] * width))
        onehot[rows, block.T + width * np.arange(block.shape[0])] = 1.0
        acc += onehot @ onehot.T
    return _finish_similarity(acc, n_draws)


def _finish_similarity(acc: np.ndarray, n_draws: int) -> np.ndarray:
    """Average, symmetrise, clip to [0, 1] and set the unit diagonal, in place where possible."""
    acc /= n_draws
    sim = 0.5 * (acc + acc.T)
    np.clip(sim, 0.0, 1.0, out=sim)
    np.fill_diagonal(sim, 1.0)
    return sim


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


def canonicalize_partitions(labels, *, order: str = "first") -> np.ndarray:
    """Relabel partitions to ``0 .. n_clusters - 1`` in a canonical order.

    Two label vectors that describe the same partition get identical output.

    Parameters
    ----------
    labels : array_like of int, shape (n_obs,) or (n_partitions, n_obs)
        Partition(s) with any integer labels.
    order : {"first", "size"}, default "first"
        ``"first"``: clusters numbered in order of first appearance. ``"size"``: by decreasing size, ties by
        first appearance.

    Returns
    -------
    ndarray of int64, same shape as `labels`

    Examples
    --------
    >>> canonicalize_partitions([7, 3, 7, 3, 3]).tolist()
    [0, 1, 0, 1, 1]
    >>> canonicalize_partitions([7, 3, 7, 3, 3], order="size").tolist()
    [1, 0, 1, 0, 0]
    """
    if order not in ORDERS:
        raise ValueError(
            f"order must be one of {ORDERS}; got {order!r}. Use 'first' for order of first appearance or "
            f"'size' for decreasing cluster size."
        )
    arr = _as_label_array(labels, name="labels")
    if arr.ndim not in (1, 2):
        raise ValueError(f"labels must be 1-D (n_obs,) or 2-D (n_partitions, n_obs); got shape {arr.shape}.")
    single = arr.ndim == 1
    arr2 = arr[None, :] if single else arr
    n_parts, n_obs = arr2.shape
    out = np.empty(arr2.shape, dtype=np.int64)
    if n_obs == 0:
        return out[0] if single else out
    step = max(1, (4 * 2**20) // n_obs)  # about 4M labels per chunk keeps the temporaries small
    for start in range(0, n_parts, step):
        out[start : start + step] = _canonical_block(arr2[start : start + step], order)
    return out[0] if single else out


def _canonical_block(labels: np.ndarray, order: str) -> np.ndarray:
    n_parts, n_obs = labels.shape
    perm = np.argsort(labels, axis=1, kind="stable")
    sorted_labels = np.take_along_axis(labels, perm, axis=1)
    new_run = np.ones(labels.shape, dtype=bool)
    new_run[:, 1:] = sorted_labels[:, 1:] != sorted_labels[:, :-1]
    sorted_codes = np.cumsum(new_run, axis=1) - 1
    codes = np.empty_like(sorted_codes)
    np.put_along_axis(codes, perm, sorted_codes, axis=1)
    width = int(sorted_codes[:, -1].max()) + 1

    # With a stable sort, the first element of each run is the cluster's first appearance.
    first = np.full((n_parts, width), n_obs, dtype=np.int64)
    rr, jj = np.nonzero(new_run)
    first[rr, sorted_codes[rr, jj]] = perm[rr, jj]
    if order == "first":
        key = first
    else:
        flat = (codes + width * np.arange(n_parts)[:, None]).ravel()
        counts = np.bincount(flat, minlength=n_parts * width).reshape(n_parts, width)
        # Larger clusters first, then earlier first appearance; absent codes (count 0) sort last.
        key = first - counts * (n_obs + 1)
    rank = np.argsort(np.argsort(key, axis=1, kind="stable"), axis=1, kind="stable")
    return np.take_along_axis(rank, codes, axis=1)


def _dense_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row codes 0..m-1 (order of first appearance) and the number of clusters per row."""
    codes = canonicalize_partitions(labels, order="first")
    return codes, codes.max(axis=1) + 1


def _unique_rows(codes: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Distinct rows of a canonical code array: (count, first index of each, inverse map)."""
    small = codes.astype(np.int32 if codes.shape[1] < 2**31 else np.int64, copy=False)
    seen: dict[bytes, int] = {}
    first_index: list[int] = []
    inverse = np.empty(codes.shape[0], dtype=np.int64)
    for row_index, row in enumerate(small):
        key = row.tobytes()
        position = seen.get(key)
        if position is None:
            position = seen[key] = len(first_index)
            first_index.append(row_index)
        inverse[row_index] = position
    return len(first_index), np.asarray(first_index, dtype=np.int64), inverse


# --------------------------------------------------------------------------------------------------------
# Candidate partitions
# --------------------------------------------------------------------------------------------------------


def sample_partitions(resp, n: int | None = None, *, random_seed=None, atol: float = 1e-6) -> np.ndarray:
    """Draw hard partitions ``z_i ~ Categorical(resp[s, i, :])`` from per-draw responsibilities.

    Parameters
    ----------
    resp : array_like of shape (n_draws, n_obs, n_components) or (n_chains, n_draws, n_obs, n_components)
        Responsibilities of each posterior draw; rows sum to 1.
    n : int, optional
        Number of partitions: one from each of `n` posterior draws chosen at random without replacement
        (kept in draw order). Default: one from every draw.
    random_seed : int, numpy.random.Generator or None
        Seed for the draw selection and the sampling.
    atol : float, default 1e-6
        Tolerance on the row sums of `resp`.

    Returns
    -------
    ndarray of int64, shape (n, n_obs)
        Component labels (labels keep the draw's component numbering).

    Raises
    ------
    ValueError
        If `resp` is invalid (see :func:`co_clustering_matrix`) or `n` is not in ``1 .. n_draws``.
    """
    resp = _check_resp(resp, atol=atol)
    rng = np.random.default_rng(random_seed)
    return _sample(resp, _select_draws(resp.shape[0], n, rng), rng)


def _sample(resp: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Inverse-CDF sampling of one label per observation from each selected draw, in chunks of draws."""
    n_obs, n_comp = resp.shape[1:]
    out = np.empty((draws.size, n_obs), dtype=np.int64)
    step = max(1, _CHUNK_BYTES // (8 * n_obs * n_comp))
    for start in range(0, draws.size, step):
        block = resp[draws[start : start + step]]
        cum = np.cumsum(block, axis=-1)
        u = rng.random((*block.shape[:2], 1)) * cum[..., -1:]
        out[start : start + step] = np.minimum(np.sum(cum <= u, axis=-1), n_comp - 1)
    return out


def _argmax(resp: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Per-draw most probable component, without copying `resp` when every draw is used."""
    if draws.size == resp.shape[0]:  # draws are sorted and distinct: all of them, in order
        return np.argmax(resp, axis=-1).astype(np.int64)
    return np.argmax(resp[draws], axis=-1).astype(np.int64)


def argmax_partitions(resp, n: int | None = None, *, random_seed=None, atol: float = 1e-6) -> np.ndarray:
    """The most probable component of every observation, per posterior draw.

    Parameters
    ----------
    resp : array_like of shape (n_draws, n_obs, n_components) or (n_chains, n_draws, n_obs, n_components)
        Responsibilities of each posterior draw; rows sum to 1.
    n : int, optional
        Use `n` posterior draws chosen at random without replacement (kept in draw order). Default: all.
    random_seed : int, numpy.random.Generator or None
        Seed for the draw selection (unused when `n` is None).
    atol : float, default 1e-6
        Tolerance on the row sums of `resp`.

    Returns
    -------
    ndarray of int64, shape (n, n_obs)
    """
    resp = _check_resp(resp, atol=atol)
    draws = _select_draws(resp.shape[0], n, np.random.default_rng(random_seed))
    return _argmax(resp, draws)


def linkage_partitions(similarity, *, max_clusters: int = 10, method: str = "average") -> np.ndarray:
    """Partitions from hierarchical clustering of ``1 - similarity``, cut at 1 .. `max_clusters` clusters.

    A cheap source of good candidates for :func:`point_partition` (R's ``mcclust`` uses average and
    complete linkage of the similarity matrix the same way).

    Parameters
    ----------
    similarity : array_like of shape (n_obs, n_obs)
        Posterior similarity matrix.
    max_clusters : int, default 10
        Largest number of clusters to cut the tree at (capped at `n_obs`).
    method : {"average", "complete", "single", "weighted"}, default "average"
        Linkage method of :func:`scipy.cluster.hierarchy.linkage`.

    Returns
    -------
    ndarray of int64, shape (min(max_clusters, n_obs), n_obs)
        Row ``k - 1`` is the cut with (at most) ``k`` clusters, labelled from 0.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if method not in LINKAGE_METHODS:
        raise ValueError(
            f"method must be one of {LINKAGE_METHODS}; got {method!r}. Methods such as 'ward' need Euclidean "
            f"distances, which 1 - similarity is not; use 'average'."
        )
    max_clusters = check_positive_int(max_clusters, "max_clusters", minimum=1)
    sim = _check_similarity(similarity)
    n_obs = sim.shape[0]
    n_cuts = min(max_clusters, n_obs)
    if n_obs == 1:
        return np.zeros((1, 1), dtype=np.int64)
    dist = 1.0 - sim
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method=method)
    out = np.empty((n_cuts, n_obs), dtype=np.int64)
    for k in range(1, n_cuts + 1):
        out[k - 1] = fcluster(tree, t=k, criterion="maxclust") - 1
    return out


def candidate_partitions(
    resp,
    *,
    n: int | None = None,
    sampled: bool = True,
    argmax: bool = True,
    similarity=None,
    max_clusters: int | None = None,
    random_seed=None,
    atol: float = 1e-6,
) -> np.ndarray:
    """Candidate partitions for :func:`point_partition`, pooled from several sources.

    Parameters
    ----------
    resp : array_like of shape (n_draws, n_obs, n_components) or (n_chains, n_draws, n_obs, n_components)
        Responsibilities of each posterior draw; rows sum to 1.
    n : int, optional
        Number of posterior draws to use (chosen at random, the same draws for both per-draw sources).
        Default: all draws.
    sampled : bool, default True
        Include one partition sampled from the responsibilities of each used draw
        (:func:`sample_partitions`).
    argmax : bool, default True
        Include the per-draw most probable assignment of each used draw (:func:`argmax_partitions`).
    similarity : array_like of shape (n_obs, n_obs), optional
        If given, also include average-linkage cuts of ``1 - similarity`` at 1 .. `max_clusters` clusters
        (:func:`linkage_partitions`).
    max_clusters : int, optional
        Largest cut for the linkage candidates; default ``n_components`` of `resp`.
    random_seed : int, numpy.random.Generator or None
        Seed for the draw selection and the sampling.
    atol : float, default 1e-6
        Tolerance on the row sums of `resp`.

    Returns
    -------
    ndarray of int64, shape (n_candidates, n_obs)
        Stacked candidates (sampled, then argmax, then linkage cuts); duplicates are not removed
        (:func:`point_partition` evaluates each distinct partition once).

    Raises
    ------
    ValueError
        If no source is selected, or an input is invalid.
    """
    if not (sampled or argmax or similarity is not None):
        raise ValueError(
            "candidate_partitions needs at least one source of candidates; got sampled=False, argmax=False "
            "and similarity=None. Set sampled=True or argmax=True, or pass similarity."
        )
    resp = _check_resp(resp, atol=atol)
    rng = np.random.default_rng(random_seed)
    draws = _select_draws(resp.shape[0], n, rng)
    parts = []
    if sampled:
        parts.append(_sample(resp, draws, rng))
    if argmax:
        parts.append(_argmax(resp, draws))
    if similarity is not None:
        sim = _check_similarity(similarity)
        if sim.shape[0] != resp.shape[1]:
            raise ValueError(
                f"similarity has {sim.shape[0]} rows but resp has {resp.shape[1]} observations; pass the "
                f"similarity matrix computed from the same responsibilities."
            )
        k = resp.shape[2] if max_clusters is None else max_clusters
        parts.append(linkage_partitions(sim, max_clusters=k))
    return np.concatenate(parts, axis=0)


def _select_draws(n_draws: int, n, rng: np.random.Generator) -> np.ndarray:
    if n is None:
        return np.arange(n_draws)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= n_draws:
        raise ValueError(
            f"n must be an integer from 1 to the number of draws ({n_draws}); got {n!r}. Pass n=None to "
            f"use every draw."
        )
    return np.sort(rng.choice(n_draws, size=int(n), replace=False))


# --------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------


def _check_resp(resp, *, atol: float) -> np.ndarray:
    """Return `resp` as float64 (n_draws, n_obs, n_components), or raise a message naming the fix."""
    atol = check_nonnegative_float(atol, "atol")
    arr = as_float_array(resp, "resp", "a numeric array of shape (n_draws, n_obs, n_components)")
    if arr.ndim == 4:
        arr = arr.reshape(-1, arr.shape[2], arr.shape[3])
    elif arr.ndim != 3:
        hint = " For a single draw use resp[None]." if arr.ndim == 2 else ""
        raise ValueError(
            f"resp must be 3-D (n_draws, n_obs, n_components) or 4-D (n_chains, n_draws, n_obs, "
            f"n_components); got an array with {arr.ndim} dimension(s) and shape {arr.shape}.{hint}"
        )
    _check_nonempty(arr, name="resp", axes=("n_draws", "n_obs", "n_components"))
    row_sums = np.sum(arr, axis=-1)
    if not np.all(np.isfinite(row_sums)):
        bad = np.argwhere(~np.isfinite(row_sums))[0]
        raise ValueError(
            f"resp must contain only finite values; found NaN or infinity, first at draw {bad[0]}, "
            f"observation {bad[1]}. Compute responsibilities in log space (logsumexp) and exponentiate."
        )
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -atol or hi > 1.0 + atol:
        raise ValueError(
            f"resp must hold probabilities in [0, 1]; got values from {lo:.6g} to {hi:.6g}. If these are "
            f"log-responsibilities, pass np.exp(log_resp)."
        )
    deviation = np.abs(row_sums - 1.0)
    if np.any(deviation > atol):
        bad = np.unravel_index(int(np.argmax(deviation)), deviation.shape)
        raise ValueError(
            f"resp rows must sum to 1 over components (last axis) within atol={atol:g}; the worst row "
            f"(draw {bad[0]}, observation {bad[1]}) sums to {row_sums[bad]:.9g}. Check that the last axis "
            f"is the component axis, or normalise with resp / resp.sum(axis=-1, keepdims=True)."
        )
    return arr


def _check_similarity(similarity, *, name: str = "similarity") -> np.ndarray:
    sim = as_float_array(similarity, name, "a numeric (n_obs, n_obs) matrix")
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] == 0:
        raise ValueError(
            f"{name} must be a square (n_obs, n_obs) matrix with n_obs >= 1; got shape {sim.shape}. Compute "
            f"it with co_clustering_matrix(resp)."
        )
    if not np.all(np.isfinite(sim)):
        raise ValueError(
            f"{name} must contain only finite values; found NaN or infinity. Recompute it with "
            f"co_clustering_matrix(resp) from valid responsibilities."
        )
    tol = _SIMILARITY_ATOL
    if float(sim.min()) < -tol or float(sim.max()) > 1.0 + tol:
        raise ValueError(
            f"{name} must hold probabilities in [0, 1]; got values from {sim.min():.6g} to {sim.max():.6g}. "
            f"Pass a posterior similarity (co-clustering) matrix, not a distance or count matrix."
        )
    if not np.allclose(np.diagonal(sim), 1.0, rtol=0.0, atol=tol):
        raise ValueError(
            f"{name} must have a unit diagonal (P(z_i = z_i) = 1); got diagonal values from "
            f"{np.diagonal(sim).min():.6g} to {np.diagonal(sim).max():.6g}. Use co_clustering_matrix(resp), "
            f"or set the diagonal with np.fill_diagonal(similarity, 1.0)."
        )
    if not np.allclose(sim, sim.T, rtol=0.0, atol=tol):
        worst = float(np.max(np.abs(sim - sim.T)))
        raise ValueError(
            f"{name} must be symmetric; the largest |P[i, j] - P[j, i]| is {worst:.3g}. Symmetrise it with "
            f"0.5 * (similarity + similarity.T)."
        )
    return sim


def _as_label_array(labels, *, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(
            f"{name} must hold integer cluster labels; got dtype {arr.dtype}. Convert with "
            f"np.asarray({name}, dtype=int)."
        )
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(
                f"{name} must hold integer cluster labels; got non-integer or non-finite floats (e.g. NaN). "
                f"Pass labels such as resp.argmax(axis=-1), not probabilities."
            )
    return arr.astype(np.int64, copy=False)


def _check_partitions(partition, *, n_obs: int, name: str) -> tuple[np.ndarray, bool]:
    """Return (C, N) int64 labels and whether a single 1-D partition was given."""
    arr = _as_label_array(partition, name=name)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (n_obs,) or 2-D (n_partitions, n_obs) integer labels; got an array with "
            f"{arr.ndim} dimension(s) and shape {arr.shape}."
        )
    single = arr.ndim == 1
    arr = arr[None, :] if single else arr
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one partition; got shape {arr.shape}.")
    if arr.shape[1] != n_obs:
        raise ValueError(
            f"{name} has {arr.shape[1]} labels per partition but similarity is {n_obs} x {n_obs}; they "
            f"must describe the same observations, in the same order."
        )
    return arr, single


def _check_nonempty(arr: np.ndarray, *, name: str, axes: tuple[str, ...]) -> None:
    for size, axis in zip(arr.shape, axes, strict=True):
        if size == 0:
            raise ValueError(f"{name} must have {axis} >= 1; got shape {arr.shape}.")


def _chunk_size(chunk_size, *, bytes_per_item: int, name: str) -> int:
    if chunk_size is None:
        return max(1, _CHUNK_BYTES // max(1, bytes_per_item))
    return check_positive_int(chunk_size, name, minimum=1)
