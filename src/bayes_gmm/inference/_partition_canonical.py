"""Canonical labelling of partitions: the same partition always gets the same label vector.

One job: relabel partitions to ``0 .. n_clusters - 1`` in order of first appearance or by decreasing
cluster size (:func:`canonicalize_partitions`), so that label vectors equal up to relabelling compare
equal; with helpers for dense per-row codes and for the distinct rows of a canonical code array.
"""

from __future__ import annotations

import numpy as np

from bayes_gmm.inference._partition_checks import _as_label_array

__all__ = ["canonicalize_partitions"]

ORDERS = ("size", "first")


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
