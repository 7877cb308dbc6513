"""Posterior similarity (co-clustering) matrices ``P[i, j] = P(z_i = z_j | data)``.

One job: the label-free summary of "which points belong together". With the discrete assignments
marginalised out, each posterior draw ``s`` gives responsibilities ``resp[s, i, k] = P(z_i = k | theta_s,
x_i)``; component labels are arbitrary within a draw (label switching), and ``P`` does not depend on them.
It is computed from responsibilities (:func:`co_clustering_matrix`) or from sampled hard partitions
(:func:`co_clustering_from_labels`). Memory: nothing of shape (n_draws, n_obs, n_obs) is ever formed;
``sum_s R_s R_s^T`` is accumulated over chunks of draws as one matrix product per chunk. The similarity
matrix itself is ``n_obs x n_obs`` float64 (128 MB for 4,000 points).
"""

from __future__ import annotations

import numpy as np

from bayes_gmm.inference._partition_canonical import _dense_codes
from bayes_gmm.inference._partition_checks import (
    _as_label_array,
    _check_nonempty,
    _check_resp,
    _chunk_size,
)

__all__ = ["co_clustering_from_labels", "co_clustering_matrix"]


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
