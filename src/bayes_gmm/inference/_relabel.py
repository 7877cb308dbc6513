"""Undo label switching: permute each posterior draw's components to best match a reference labelling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment

COMPONENT = "component"


@dataclass(frozen=True)
class Relabelling:
    """The per-draw permutations applied to the posterior.

    Attributes
    ----------
    permutations : ndarray of shape (n_chains, n_draws, n_components)
        ``new[..., k] = old[..., permutations[c, s, k]]`` for every variable with a ``component`` dim.
    fraction_relabelled : float
        Share of draws whose labelling differed from the reference (0 when no label switching happened).
    """

    permutations: np.ndarray
    fraction_relabelled: float

    @property
    def was_needed(self) -> bool:
        """Whether any draw was permuted."""
        return self.fraction_relabelled > 0


def matching_costs(means: np.ndarray, ref_means: np.ndarray, ref_covariances: np.ndarray) -> np.ndarray:
    """Cost of calling draw component j reference component k: Mahalanobis distance of the means.

    Parameters
    ----------
    means : array of shape (n_draws, K, D)
    ref_means : array of shape (K, D)
    ref_covariances : array of shape (K, D, D)

    Returns
    -------
    ndarray of shape (n_draws, K, K), ``cost[s, j, k]``.
    """
    inverse_chol = np.linalg.inv(np.linalg.cholesky(ref_covariances))  # K small inverses, once
    diff = means[:, :, None, :] - ref_means[None, None, :, :]  # (S, J, K, D)
    standardised = np.einsum("kde,sjke->sjkd", inverse_chol, diff)
    return np.sum(standardised**2, axis=-1)


def find_relabelling(means: np.ndarray, ref_means: np.ndarray, ref_covariances: np.ndarray) -> Relabelling:
    """Optimal (Hungarian) matching of every draw's components to the reference components.

    Parameters
    ----------
    means : array of shape (n_chains, n_draws, K, D)
        Posterior draws of the component means.
    ref_means, ref_covariances : arrays of shape (K, D) and (K, D, D)
        The reference labelling (typically the EM fit that started the chains).
    """
    n_chains, n_draws, k, _ = means.shape
    costs = matching_costs(means.reshape(n_chains * n_draws, k, -1), ref_means, ref_covariances)
    identity = np.arange(k)
    perms = np.empty((n_chains * n_draws, k), dtype=np.int64)
    for s, cost in enumerate(costs):
        rows, cols = linear_sum_assignment(cost)
        perms[s, cols] = rows  # reference label cols[i] is draw component rows[i]
    changed = np.any(perms != identity, axis=1)
    return Relabelling(perms.reshape(n_chains, n_draws, k), float(changed.mean()))


def apply_relabelling(posterior: xr.Dataset, relabelling: Relabelling) -> xr.Dataset:
    """Return `posterior` with every variable that has a ``component`` dim permuted draw by draw."""
    perms = relabelling.permutations
    out = {}
    for name, var in posterior.data_vars.items():
        if COMPONENT not in var.dims:
            out[name] = var
            continue
        moved = var.transpose("chain", "draw", COMPONENT, ...)
        values = moved.to_numpy()
        index = perms.reshape(perms.shape + (1,) * (values.ndim - 3))
        permuted = np.take_along_axis(values, index, axis=2)
        out[name] = moved.copy(data=permuted).transpose(*var.dims)
    return xr.Dataset(out, attrs=posterior.attrs)
