"""Shared Gaussian-mixture math in NumPy: precision Cholesky factors, log-determinants, log-densities.

Shapes follow scikit-learn's conventions per covariance type (K components, D features):

============  ==================  ========================
type          covariances         precision Cholesky
============  ==================  ========================
"full"        (K, D, D)           (K, D, D), upper triangular
"tied"        (D, D)              (D, D), upper triangular
"diag"        (K, D)              (K, D)
"spherical"   (K,)                (K,)
============  ==================  ========================

The precision Cholesky factor ``P`` satisfies ``inv(cov) = P @ P.T``, so the squared Mahalanobis distance
of ``x`` is ``||(x - mu) @ P||**2`` and no covariance is ever inverted.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

from bayes_gmm.exceptions import COLLAPSE_HINT, IllConditionedCovarianceError

LOG_2PI = float(np.log(2.0 * np.pi))


_COLLAPSE_MESSAGE = (
    "a component's covariance is not positive definite: it has collapsed onto too few or duplicated points. "
    + COLLAPSE_HINT
)


def precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Cholesky factor of the precision matrices, in the shape that `covariance_type` uses."""
    if covariance_type in ("diag", "spherical"):
        if np.any(covariances <= 0.0) or not np.all(np.isfinite(covariances)):
            raise IllConditionedCovarianceError(_COLLAPSE_MESSAGE)
        return 1.0 / np.sqrt(covariances)
    stacked = covariances[np.newaxis] if covariance_type == "tied" else covariances
    n_features = stacked.shape[-1]
    prec_chol = np.empty_like(stacked)
    for k, cov in enumerate(stacked):
        try:
            cov_chol = linalg.cholesky(cov, lower=True)
        except linalg.LinAlgError:
            raise IllConditionedCovarianceError(_COLLAPSE_MESSAGE) from None
        prec_chol[k] = linalg.solve_triangular(cov_chol, np.eye(n_features), lower=True).T
    return prec_chol[0] if covariance_type == "tied" else prec_chol


def covariances_from_precision_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """Inverse of :func:`precision_cholesky`."""
    if covariance_type in ("diag", "spherical"):
        return 1.0 / prec_chol**2
    stacked = prec_chol[np.newaxis] if covariance_type == "tied" else prec_chol
    cov = np.empty_like(stacked)
    for k, p in enumerate(stacked):
        p_inv = linalg.solve_triangular(p, np.eye(p.shape[0]), lower=False)
        cov[k] = p_inv.T @ p_inv
    return cov[0] if covariance_type == "tied" else cov


def full_precision_cholesky(prec_chol: np.ndarray, covariance_type: str, n_components: int, n_features: int):
    """Expand any covariance type's precision Cholesky to a (K, D, D) stack of upper-triangular factors."""
    if covariance_type == "full":
        return np.ascontiguousarray(prec_chol)
    if covariance_type == "tied":
        return np.ascontiguousarray(np.broadcast_to(prec_chol, (n_components, n_features, n_features)))
    diag = prec_chol if covariance_type == "diag" else np.repeat(prec_chol[:, None], n_features, axis=1)
    out = np.zeros((n_components, n_features, n_features))
    idx = np.arange(n_features)
    out[:, idx, idx] = diag
    return out


def log_det_precision_cholesky(prec_chol: np.ndarray, covariance_type: str, n_features: int) -> np.ndarray:
    """log det of each precision Cholesky factor (= -0.5 log det covariance); shape (K,) or scalar if tied."""
    if covariance_type == "full":
        return np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)
    if covariance_type == "tied":
        return np.sum(np.log(np.diag(prec_chol)))
    if covariance_type == "diag":
        return np.sum(np.log(prec_chol), axis=1)
    return n_features * np.log(prec_chol)


def log_gaussian_densities(X: np.ndarray, means: np.ndarray, prec_chol: np.ndarray, covariance_type: str):
    """log N(x_i | mu_k, Sigma_k) for every sample and component, shape (n_samples, n_components)."""
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    log_det = log_det_precision_cholesky(prec_chol, covariance_type, n_features)
    maha = np.empty((n_samples, n_components))
    for k in range(n_components):
        diff = X - means[k]
        if covariance_type == "full":
            y = diff @ prec_chol[k]
        elif covariance_type == "tied":
            y = diff @ prec_chol
        else:  # diag (per-feature) or spherical (scalar) precision Cholesky
            y = diff * prec_chol[k]
        maha[:, k] = np.einsum("ij,ij->i", y, y)
    return -0.5 * (n_features * LOG_2PI + maha) + log_det


def log_responsibilities(X, weights, means, prec_chol, covariance_type):
    """Per-sample log mixture density and log responsibilities.

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
        log sum_k w_k N(x_i | mu_k, Sigma_k).
    log_resp : ndarray of shape (n_samples, n_components)
        log P(z_i = k | x_i).
    """
    with np.errstate(divide="ignore"):  # an empty component has weight 0 and log weight -inf
        weighted = log_gaussian_densities(X, means, prec_chol, covariance_type) + np.log(weights)
    log_density = logsumexp(weighted, axis=1)
    return log_density, weighted - log_density[:, np.newaxis]
