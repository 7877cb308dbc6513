"""Undo label switching: permute each posterior draw's components to best match a reference labelling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment
from scipy.special import xlogy

from bayes_gmm.exceptions import COLLAPSE_HINT, IllConditionedCovarianceError

COMPONENT = "component"

#: Bytes of work memory one chunk of draws may use when the matching costs are computed.
_CHUNK_BYTES = 32 * 2**20
#: Reference weights are kept this far from 0 and 1, so that their log is finite.
_WEIGHT_FLOOR = 1e-12


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


def matching_costs(
    means: np.ndarray,
    covariances: np.ndarray,
    ref_means: np.ndarray,
    ref_covariances: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    ref_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Cost of calling draw component j reference component k: the KL divergence of the two components.

    ``cost[s, j, k] = KL(N(mu_sj, Sigma_sj) || N(m_k, R_k))`` in nats, plus
    ``KL(Bernoulli(w_sj) || Bernoulli(v_k))`` when weights are given. It is zero for identical components
    and compares means, spreads and orientations, so components that share a centre are told apart by
    their covariances.

    Parameters
    ----------
    means : array of shape (n_draws, K, D)
    covariances : array of shape (n_draws, K, D, D)
        Must be numerically positive definite (their log-determinants enter the divergence).
    ref_means : array of shape (K, D)
    ref_covariances : array of shape (K, D, D)
    weights : array of shape (n_draws, K), optional
    ref_weights : array of shape (K,), optional
        Give both or neither.

    Returns
    -------
    ndarray of shape (n_draws, K, K), ``cost[s, j, k]``.

    Raises
    ------
    IllConditionedCovarianceError
        If a reference or drawn covariance is not numerically positive definite.
    """
    means, covariances, ref_means, ref_covariances, weights, ref_weights = _checked(
        np.asarray(means)[None],
        np.asarray(covariances)[None],
        ref_means,
        ref_covariances,
        None if weights is None else np.asarray(weights)[None],
        ref_weights,
    )
    means, covariances = means[0], covariances[0]
    weights = None if weights is None else weights[0]
    try:
        chol = np.linalg.cholesky(covariances)  # (S, K, D, D)
    except np.linalg.LinAlgError:
        raise IllConditionedCovarianceError(
            "a drawn covariance matrix is not numerically positive definite, so its KL divergence is undefined "
            "(a collapsed component). find_relabelling does not need it: it matches on the same cost without "
            "the drawn log-determinant. " + COLLAPSE_HINT
        ) from None
    half_log_det = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)  # 0.5 log det Sigma_sj
    return (
        _relative_costs(means, covariances, ref_means, ref_covariances, weights, ref_weights)
        - half_log_det[..., None]
    )


def find_relabelling(
    means: np.ndarray,
    covariances: np.ndarray,
    *,
    ref_means: np.ndarray,
    ref_covariances: np.ndarray,
    weights: np.ndarray | None = None,
    ref_weights: np.ndarray | None = None,
) -> Relabelling:
    """Optimal (Hungarian) matching of every draw's components to the reference components.

    Draw component j is matched to reference component k so that the summed KL divergence
    ``KL(N(mu_sj, Sigma_sj) || N(m_k, R_k))`` (plus ``KL(Bernoulli(w_sj) || Bernoulli(v_k))`` when weights
    are given) is smallest over all permutations (:func:`scipy.optimize.linear_sum_assignment`, per draw).
    The divergence compares whole components, means and covariances, so a dense core and a broad halo
    around the same centre keep their labels; with means alone they would be matched by noise.

    Parameters
    ----------
    means : array of shape (n_chains, n_draws, K, D)
        Posterior draws of the component means.
    covariances : array of shape (n_chains, n_draws, K, D, D)
        Posterior draws of the full component covariances (positive semi-definite). A numerically
        singular draw is harmless: its log-determinant is the same for every candidate label, so it
        drops out of the matching and is never computed.
    ref_means : array of shape (K, D)
        Means of the reference labelling (typically the EM fit that started the chains).
    ref_covariances : array of shape (K, D, D)
        Full covariances of the reference labelling; must be positive definite.
    weights : array of shape (n_chains, n_draws, K), optional
        Posterior draws of the mixture weights. With `ref_weights`, adds the weights' divergence to the
        cost; it matters only when two components are close as Gaussians. Give both or neither.
    ref_weights : array of shape (K,), optional
        Weights of the reference labelling.

    Returns
    -------
    Relabelling
        The per-draw permutations and the share of draws that were permuted.

    Raises
    ------
    IllConditionedCovarianceError
        If a reference covariance is not numerically positive definite.
    ValueError
        If shapes disagree, or a draw or reference value is not finite.
    """
    means, covariances, ref_means, ref_covariances, weights, ref_weights = _checked(
        means, covariances, ref_means, ref_covariances, weights, ref_weights
    )
    n_chains, n_draws, k, d = means.shape
    n = n_chains * n_draws
    flat_weights = None if weights is None else weights.reshape(n, k)
    costs = _relative_costs(
        means.reshape(n, k, d),
        covariances.reshape(n, k, d, d),
        ref_means,
        ref_covariances,
        flat_weights,
        ref_weights,
    )
    identity = np.arange(k)
    perms = np.empty((n, k), dtype=np.int64)
    for s, cost in enumerate(costs):
        rows, cols = linear_sum_assignment(cost)
        perms[s, cols] = rows  # reference label cols[i] is draw component rows[i]
    changed = np.any(perms != identity, axis=1)
    return Relabelling(perms.reshape(n_chains, n_draws, k), float(changed.mean()))


def _relative_costs(means, covariances, ref_means, ref_covariances, weights, ref_weights) -> np.ndarray:
    """``KL + 0.5 log det Sigma_sj`` (the matching cost less a per-row constant), shape (n_draws, K, K).

    ``KL(N_j || N_k) = 0.5 [tr(R_k^-1 Sigma_j) + |L_k^-1 (mu_j - m_k)|^2 - D + log det R_k - log det Sigma_j]``
    with ``R_k = L_k L_k^T``. The last term is the same for every k, so an assignment that minimises these
    costs minimises the summed KL divergences, and drawn covariances are never factorised.
    """
    n, k, d = means.shape
    try:
        ref_chol = np.linalg.cholesky(ref_covariances)  # K small factorisations, once
    except np.linalg.LinAlgError:
        raise IllConditionedCovarianceError(
            "a reference covariance matrix is not numerically positive definite, so draws cannot be matched "
            "to it. " + COLLAPSE_HINT
        ) from None
    inverse_chol = np.linalg.inv(ref_chol)  # (K, D, D), triangular
    ref_precision = np.swapaxes(inverse_chol, -1, -2) @ inverse_chol  # R_k^-1
    ref_half_log_det = np.log(np.diagonal(ref_chol, axis1=-2, axis2=-1)).sum(axis=-1)  # (K,)
    whitened_ref = np.einsum("kde,ke->kd", inverse_chol, ref_means)  # L_k^-1 m_k
    costs = np.empty((n, k, k))
    step = max(1, _CHUNK_BYTES // (8 * k * k * d))
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        m = means[rows].reshape(-1, d)  # (s j, D)
        # tr(R_k^-1 Sigma_j) = sum(R_k^-1 * Sigma_j) for symmetric matrices: one matrix product
        trace = (covariances[rows].reshape(-1, d * d) @ ref_precision.reshape(k, d * d).T).reshape(-1, k, k)
        whitened = (m @ inverse_chol.reshape(k * d, d).T).reshape(-1, k, k, d) - whitened_ref  # (s, j, k, D)
        mahalanobis = np.einsum("sjkd,sjkd->sjk", whitened, whitened)
        costs[rows] = 0.5 * (trace + mahalanobis - d) + ref_half_log_det
    if weights is not None:
        w = weights[:, :, None]
        v = np.clip(ref_weights, _WEIGHT_FLOOR, 1.0 - _WEIGHT_FLOOR)
        costs += xlogy(w, w) - xlogy(w, v) + xlogy(1.0 - w, 1.0 - w) - xlogy(1.0 - w, 1.0 - v)
    return costs


def _checked(means, covariances, ref_means, ref_covariances, weights, ref_weights):
    """Arrays as floats, with shapes checked against ``means`` (n_chains, n_draws, K, D) and values finite."""
    means = np.asarray(means, dtype=float)
    if means.ndim != 4:
        raise ValueError(f"means must have shape (n_chains, n_draws, K, D); got shape {means.shape}.")
    n_chains, n_draws, k, d = means.shape
    expected = {
        "covariances": (covariances, (n_chains, n_draws, k, d, d)),
        "ref_means": (ref_means, (k, d)),
        "ref_covariances": (ref_covariances, (k, d, d)),
    }
    if (weights is None) != (ref_weights is None):
        raise ValueError("give both weights and ref_weights, or neither (the weight term needs both).")
    if weights is not None:
        expected.update(weights=(weights, (n_chains, n_draws, k)), ref_weights=(ref_weights, (k,)))
    arrays = {"means": means}
    for name, (value, shape) in expected.items():
        value = np.asarray(value, dtype=float)
        if value.shape != shape:
            raise ValueError(
                f"{name} must have shape {shape} to match means of shape {means.shape}; got {value.shape}. "
                "Covariances must be full (K, D, D) matrices: expand diagonal or tied ones first."
            )
        arrays[name] = value
    for name, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or infinite values; relabelling needs finite draws.")
    return tuple(
        arrays.get(name)
        for name in ("means", "covariances", "ref_means", "ref_covariances", "weights", "ref_weights")
    )


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
