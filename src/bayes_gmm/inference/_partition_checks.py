"""Argument checks and work-memory sizing shared by the partition modules.

One job: turn user input (responsibilities, similarity matrices, label arrays, chunk sizes) into validated
arrays, or raise a :class:`ValueError` whose message names the fix. The working-memory budget for one chunk
of draws or candidates, and the tolerance on the structure of a similarity matrix, live here too.
"""

from __future__ import annotations

import numpy as np

from bayes_gmm._validation import as_float_array, check_nonnegative_float, check_positive_int

# Working-memory budget for one chunk of draws or candidates (bytes of float64 work arrays).
_CHUNK_BYTES = 64 * 2**20
# Tolerance on the structure of a similarity matrix (symmetry, unit diagonal, range).
_SIMILARITY_ATOL = 1e-8


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
