"""The label-invariant test quantities of SBC, computed for a batch of parameter values.

One job: map GMM parameters (weights, means, covariances) and the simulated data to the scalar functions
``f`` whose ranks SBC tests: sorted weights, means ordered by their first coordinate, sorted
log-determinants, correlations and the log-likelihood of the data (see :mod:`bayes_gmm.sbc`). None of them
depends on the components' labels, so label switching cannot distort the ranks.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sbc_quantities"]


def _log_likelihood(X: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray):
    """Mixture log-likelihood of the data X (N, D) under a batch of parameters (..., K), (..., K, D), (..., K, D, D)."""
    chol = np.linalg.cholesky(covariances)  # (..., K, D, D)
    resid = X[..., None, :, :] - means[..., :, None, :]  # (..., K, N, D)
    z = np.linalg.solve(chol, np.swapaxes(resid, -1, -2))  # (..., K, D, N): L^-1 (x - mu)
    log_det = np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)  # (..., K)
    d = X.shape[-1]
    log_dens = -0.5 * np.sum(z**2, axis=-2) - log_det[..., None] - 0.5 * d * np.log(2 * np.pi)  # (..., K, N)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    return np.sum(np.logaddexp.reduce(log_w[..., None] + log_dens, axis=-2), axis=-1)


def sbc_quantities(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, X: np.ndarray, covariance_type: str
) -> dict[str, np.ndarray]:
    """The label-invariant test quantities (see module docstring) of a batch of parameter values.

    Parameters have shapes (..., K), (..., K, D) and (..., K, D, D); every quantity has shape (...).
    """
    weights, means, covariances = (np.asarray(a, dtype=float) for a in (weights, means, covariances))
    k, d = means.shape[-2:]
    out = {}
    sorted_weights = np.sort(weights, axis=-1)
    for j in range(k - 1):
        out[f"weight[{j}]"] = sorted_weights[..., j]
    order = np.argsort(means[..., 0], axis=-1, kind="stable")  # components by their first mean coordinate
    ordered_means = np.take_along_axis(means, order[..., None], axis=-2)
    for c in range(k):
        for f in range(d):
            out[f"mean[{c},x{f}]"] = ordered_means[..., c, f]
    log_det = np.linalg.slogdet(covariances)[1]
    if covariance_type == "tied":
        out["logdet"] = log_det[..., 0]
    else:
        sorted_log_det = np.sort(log_det, axis=-1)
        for j in range(k):
            out[f"logdet[{j}]"] = sorted_log_det[..., j]
    if covariance_type in ("full", "tied"):
        sd = np.sqrt(np.diagonal(covariances, axis1=-2, axis2=-1))
        corr = covariances / (sd[..., :, None] * sd[..., None, :])
        ordered_corr = np.take_along_axis(corr, order[..., None, None], axis=-3)
        rows, cols = np.tril_indices(d, -1)
        for c in range(1 if covariance_type == "tied" else k):
            for i, j in zip(cols, rows, strict=True):
                name = f"corr[x{i},x{j}]" if covariance_type == "tied" else f"corr[{c},x{i},x{j}]"
                out[name] = ordered_corr[..., c, i, j]
    out["loglik"] = _log_likelihood(X, weights, means, covariances)
    return out
