"""Lightweight coresets: a small weighted sample that stands in for a large data set in a GMM fit.

The lightweight coreset of Bachem, Lucic & Krause (2018, "Scalable k-means clustering via lightweight
coresets", KDD) samples m points i.i.d. from

    q(x) = 1 / (2 n) + d(x, mean)^2 / (2 sum_x' d(x', mean)^2)

(half uniform, half proportional to the squared distance from the data mean) and gives each sampled point
the weight 1 / (m q(x)), so that any sum over the data, sum_x f(x), is estimated without bias by the
weighted sum over the coreset. Lucic, Faulkner, Krause & Feldman (2018, "Training Gaussian mixture models
at scale via coresets", JMLR 18(160)) show that such importance-sampled coresets approximate the GMM
log-likelihood uniformly over the parameters; a weighted likelihood on the coreset then stands in for the
full-data likelihood (see :func:`bayes_gmm.inference.fit_coreset_gmm`).

It takes two passes over the data, each a map over row blocks (a Dask array's chunks, or row blocks of a
NumPy array) whose results are a few numbers and at most m rows per block, so the data are never loaded
whole: (1) the mean; (2) per block, the squared distances, their sum, and candidate samples. The mixture
form of q makes one pass enough for the sampling: each of the m draws is uniform with probability 1/2
(those row indices are drawn before the pass and fetched from their blocks), otherwise it is drawn in
proportion to d^2, which is a block chosen with probability (its sum of d^2) / (total) and a point of that
block with probability d^2 / (its sum); every block draws enough candidates of the latter kind in the
pass, and the client then allocates the draws to blocks (a multinomial) and keeps the first candidates of
each block. The result is an exact i.i.d. sample from q.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from bayes_gmm._validation import check_positive_int, is_dask_collection

#: Rows per block when a NumPy array is processed (bounds the temporary memory of pass 2).
NUMPY_BLOCK_ROWS = 1_000_000


@dataclass(frozen=True, eq=False)
class Coreset:
    """A weighted sample of a data set.

    Attributes
    ----------
    points : ndarray of shape (size, n_features)
        The sampled rows (a row drawn twice appears twice).
    weights : ndarray of shape (size,)
        ``1 / (size q(x))`` for each sampled row: weighted sums over the coreset estimate sums over the
        data without bias (the weights sum to about `n_source`).
    size : int
        Number of draws m.
    n_source : int
        Number of rows of the data it was drawn from.
    probabilities : ndarray of shape (size,)
        The sampling probability q(x) of each sampled row.
    """

    points: np.ndarray
    weights: np.ndarray
    size: int
    n_source: int
    probabilities: np.ndarray = field(repr=False)


def sampling_probabilities(X) -> np.ndarray:
    """The lightweight-coreset sampling distribution q over the rows of an in-memory array `X`.

    ``q_i = 1/(2n) + d_i^2 / (2 sum_j d_j^2)`` with d_i the Euclidean distance of row i from the mean
    (uniform when all rows are equal). Sums to one.
    """
    X = np.asarray(X, dtype=np.float64)
    d2 = np.sum(np.square(X - X.mean(axis=0)), axis=1)
    return _q(d2, X.shape[0], float(d2.sum()))


def _q(d2: np.ndarray, n: int, total: float) -> np.ndarray:
    if total <= 0:  # every row equal: the distance term is 0/0, the uniform half is all there is
        return np.full(d2.shape, 1.0 / n)
    return 0.5 / n + 0.5 * d2 / total


def lightweight_coreset(X, size: int, *, random_seed=None) -> Coreset:
    """Draw a lightweight coreset (Bachem, Lucic & Krause 2018) of `size` weighted points from `X`.

    Parameters
    ----------
    X : array-like or dask.array.Array of shape (n_samples, n_features)
        The data: a NumPy array (or anything ``np.asarray`` accepts, e.g. a DataFrame) or a Dask array,
        which is read chunk by chunk in two passes and never loaded whole. Must be finite.
    size : int
        Number of i.i.d. draws m (at least 1); rows can be drawn more than once.
    random_seed : int or numpy.random.SeedSequence, optional
        The same seed and the same data (and, for Dask, the same chunks) give the same coreset.

    Returns
    -------
    Coreset
        The points, their weights ``1 / (m q(x))``, `size` and the number of source rows.

    Raises
    ------
    ValueError
        For a size below 1, data that are not 2-D or have no rows, or (found in the first pass)
        non-finite values.

    Notes
    -----
    The weights make the coreset an unbiased estimate of the data for any sum: ``E[sum_j w_j f(c_j)] =
    sum_i f(x_i)``; in particular the weights sum to n in expectation and the weighted mean and covariance
    of the coreset estimate the data's. Points far from the mean are sampled more often (with smaller
    weights), which is what keeps small far-out clusters in the sample.
    """
    size = check_positive_int(size, "size")
    blocks = _row_blocks(X)
    n_rows, n_features = blocks.shape
    if n_rows < 1:
        raise ValueError(
            f"X must have at least one row; got shape {blocks.shape}. Pass the data to sample from."
        )
    root = (
        random_seed
        if isinstance(random_seed, np.random.SeedSequence)
        else np.random.SeedSequence(random_seed)
    )
    # Child streams by position (not root.spawn, which would change a SeedSequence passed in).
    streams = [
        np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i))
        for i in range(blocks.n_blocks + 1)
    ]
    client_rng = np.random.default_rng(streams[0])
    block_seeds = streams[1:]

    # Pass 1: the mean.
    mean = blocks.column_sums() / n_rows
    if not np.all(np.isfinite(mean)):
        raise ValueError(
            "X must be finite; it holds NaN or infinite values. Drop or impute those rows first."
        )

    # Before pass 2: how many draws are uniform, and which rows they are.
    n_uniform = int(client_rng.binomial(size, 0.5))
    uniform_rows = np.sort(client_rng.integers(0, n_rows, n_uniform))
    n_distance = size - n_uniform
    offsets = blocks.offsets
    per_block = [
        uniform_rows[np.searchsorted(uniform_rows, lo) : np.searchsorted(uniform_rows, hi)] - lo
        for lo, hi in itertools.pairwise(offsets)
    ]

    # Pass 2: per block, sum of d^2, the uniform rows, and n_distance candidates drawn in proportion to d^2.
    results = blocks.map(_block_pass, mean, n_distance, per_block, block_seeds)

    sums = np.array([r["d2_sum"] for r in results])
    total = float(sums.sum())
    if total > 0:
        counts = client_rng.multinomial(n_distance, sums / total)
    else:  # every row equal: q is uniform, and so are the remaining draws
        counts = np.zeros(len(results), dtype=int)
        extra = client_rng.integers(0, n_rows, n_distance)
        results = [*results, _uniform_extra(blocks, extra, mean)]
        counts = np.append(counts, n_distance)
    points = [r["uniform_points"] for r in results] + [
        r["points"][:c] for r, c in zip(results, counts, strict=True)
    ]
    d2 = [r["uniform_d2"] for r in results] + [r["d2"][:c] for r, c in zip(results, counts, strict=True)]
    points = np.concatenate(points).reshape(-1, n_features)
    d2 = np.concatenate(d2)
    order = client_rng.permutation(size)
    points, d2 = points[order], d2[order]
    q = _q(d2, n_rows, total)
    return Coreset(points=points, weights=1.0 / (size * q), size=size, n_source=n_rows, probabilities=q)


def _block_pass(block, mean, n_distance, uniform_local, seed) -> dict:
    block = np.asarray(block, dtype=np.float64)
    d2 = np.sum(np.square(block - mean), axis=1)
    d2_sum = float(d2.sum())
    rng = np.random.default_rng(seed)
    if d2_sum > 0 and n_distance > 0:
        candidates = rng.choice(block.shape[0], size=n_distance, p=d2 / d2_sum)
    else:
        candidates = np.zeros(0, dtype=int)
    return {
        "d2_sum": d2_sum,
        "points": block[candidates],
        "d2": d2[candidates],
        "uniform_points": block[uniform_local],
        "uniform_d2": d2[uniform_local],
    }


def _uniform_extra(blocks, rows: np.ndarray, mean) -> dict:
    points = blocks.take(rows)
    d2 = np.sum(np.square(points - mean), axis=1)
    empty = np.zeros((0, points.shape[1]))
    return {"d2_sum": 0.0, "points": points, "d2": d2, "uniform_points": empty, "uniform_d2": np.zeros(0)}


class _RowBlocks:
    """A NumPy or Dask array seen as row blocks: map a function over them, sum columns, take rows."""

    def __init__(self, array, is_dask: bool, offsets: np.ndarray):
        self.array = array
        self.is_dask = is_dask
        self.offsets = offsets
        self.shape = array.shape

    @property
    def n_blocks(self) -> int:
        return len(self.offsets) - 1

    def column_sums(self) -> np.ndarray:
        if self.is_dask:
            return np.asarray(self.array.astype(np.float64).sum(axis=0).compute())
        return self.array.sum(axis=0)

    def map(self, func, mean, n_distance, per_block, seeds) -> list[dict]:
        if self.is_dask:
            import dask

            delayed_blocks = self.array.to_delayed().ravel()
            tasks = [
                dask.delayed(func)(b, mean, n_distance, u, s)
                for b, u, s in zip(delayed_blocks, per_block, seeds, strict=True)
            ]
            return list(dask.compute(*tasks))
        return [
            func(self.array[lo:hi], mean, n_distance, u, s)
            for lo, hi, u, s in zip(self.offsets[:-1], self.offsets[1:], per_block, seeds, strict=True)
        ]

    def take(self, rows: np.ndarray) -> np.ndarray:
        taken = self.array[np.sort(rows)]
        return np.asarray(taken.compute() if self.is_dask else taken, dtype=np.float64)


def _row_blocks(X) -> _RowBlocks:
    if is_dask_collection(X):
        from bayes_gmm.em_baseline._dask import as_dask_array

        X = as_dask_array(X)[0]  # Dask DataFrames and Dask-backed xarray too, never loaded whole
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features); got a Dask array of shape {X.shape}.")
        if any(np.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()
        X = X.rechunk({1: -1})  # whole rows in every block
        offsets = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        return _RowBlocks(X, True, offsets)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features); got shape {X.shape}. Reshape a single feature with "
            f"X.reshape(-1, 1)."
        )
    n_rows = X.shape[0]
    offsets = np.unique(np.append(np.arange(0, n_rows, NUMPY_BLOCK_ROWS), n_rows)).astype(np.int64)
    if len(offsets) == 1:
        offsets = np.array([0, 0], dtype=np.int64)
    return _RowBlocks(X, False, offsets)
