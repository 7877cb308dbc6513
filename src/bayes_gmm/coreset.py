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
pass. Blocks are then merged in pairs up a tree: a merged list keeps the first c candidates of one side
and the first (enough - c) of the other, c ~ Binomial(enough, its share of the sum of d^2), shuffled, so
that each node holds an i.i.d. sample of its rows; only m candidates ever travel together (the client
never holds more than about m rows, however many blocks). The result is an exact i.i.d. sample from q.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from bayes_gmm._validation import check_positive_int, child_seed, is_dask_collection, seed_sequence

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
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        The same seed and the same data (and, for Dask, the same chunks) give the same coreset (the
        accepted kinds: see :func:`bayes_gmm._validation.seed_sequence`).

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
    root = seed_sequence(random_seed)
    # Child streams by position (not root.spawn, which would change a SeedSequence passed in).
    streams = [child_seed(root, i) for i in range(blocks.n_blocks + 1)]
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

    # Pass 2: per block, sum of d^2, the uniform rows, and n_distance candidates drawn in proportion to d^2;
    # merged up a tree of pairs (see the module docstring), each merge with a seed fixed here.
    merge_seeds = [child_seed(root, blocks.n_blocks + 1 + i) for i in range(blocks.n_blocks)]
    merged = blocks.map_merge(
        _block_pass, _merge_blocks, (mean, n_distance), per_block, block_seeds, merge_seeds
    )
    total = merged["d2_sum"]
    points, d2 = [merged["uniform_points"]], [merged["uniform_d2"]]
    if total > 0:
        points.append(merged["points"])
        d2.append(merged["d2"])
    else:  # every row equal: q is uniform, and so are the remaining draws
        extra = _uniform_extra(blocks, client_rng.integers(0, n_rows, n_distance), mean)
        points.append(extra["points"])
        d2.append(extra["d2"])
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


def _merge_blocks(first: dict, second: dict, seed) -> dict:
    """Two blocks' pass-2 results as one: uniform rows together, and an i.i.d. sample of the candidates
    of both (in proportion to d^2 over both), in random order so that any prefix is one too."""
    rng = np.random.default_rng(seed)
    total = first["d2_sum"] + second["d2_sum"]
    wanted = max(len(first["d2"]), len(second["d2"]))
    if total > 0:
        c = int(rng.binomial(wanted, first["d2_sum"] / total))
        order = rng.permutation(wanted)
        points = np.concatenate([first["points"][:c], second["points"][: wanted - c]])[order]
        d2 = np.concatenate([first["d2"][:c], second["d2"][: wanted - c]])[order]
    else:
        points, d2 = first["points"][:0], first["d2"][:0]
    return {
        "d2_sum": total,
        "points": points,
        "d2": d2,
        "uniform_points": np.concatenate([first["uniform_points"], second["uniform_points"]]),
        "uniform_d2": np.concatenate([first["uniform_d2"], second["uniform_d2"]]),
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

    def map_merge(self, func, merge, args: tuple, per_block, seeds, merge_seeds) -> dict:
        """``func(block, *args, per_block[i], seeds[i])`` for every block, merged in pairs up a tree by
        ``merge(a, b, seed)`` (fan-in 2, left to right, level by level; one merge seed per node in that
        order), so that the same seeds give the same result on NumPy and on Dask."""
        if self.is_dask:
            import dask

            call, merge_call = dask.delayed(func), dask.delayed(merge)
            level = [
                call(block, *args, u, s)
                for block, u, s in zip(self.array.to_delayed().ravel(), per_block, seeds, strict=True)
            ]
        else:
            call, merge_call = func, merge
            level = [
                call(self.array[lo:hi], *args, u, s)
                for lo, hi, u, s in zip(self.offsets[:-1], self.offsets[1:], per_block, seeds, strict=True)
            ]
        node_seeds = iter(merge_seeds)
        while len(level) > 1:
            pairs = [level[i : i + 2] for i in range(0, len(level), 2)]
            level = [merge_call(*pair, next(node_seeds)) if len(pair) == 2 else pair[0] for pair in pairs]
        return dask.compute(level[0])[0] if self.is_dask else level[0]

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
