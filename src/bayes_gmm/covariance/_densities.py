"""Gaussian log-densities in NumPy, for a point estimate (precision Cholesky factors) or for posterior
draws (covariance matrices, batched over draws and components)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from bayes_gmm.covariance._structures import get_structure
from bayes_gmm.exceptions import COLLAPSE_HINT, IllConditionedCovarianceError

LOG_2PI = float(np.log(2.0 * np.pi))


def log_gaussian_densities(
    X: np.ndarray, means: np.ndarray, prec_chol: np.ndarray, covariance_type
) -> np.ndarray:
    """log N(x_i | mu_k, Sigma_k) for every sample and component, shape (n_samples, n_components).

    `prec_chol` is in the stored shape of `covariance_type` (see :mod:`bayes_gmm.covariance`).
    """
    structure = get_structure(covariance_type)
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    log_det = structure.log_det_precision_cholesky(prec_chol, n_components, n_features)
    factors = structure.full_precision_cholesky(prec_chol, n_components, n_features)
    maha = np.empty((n_samples, n_components))
    for k in range(n_components):
        y = (X - means[k]) @ factors[k]
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


def covariance_cholesky(covariances: np.ndarray, what: str) -> np.ndarray:
    """Lower Cholesky factors of a stack of covariance matrices (..., D, D).

    Raises
    ------
    IllConditionedCovarianceError
        If one is not numerically positive definite; the message starts with `what` (e.g. "a posterior
        draw has a covariance matrix").
    """
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise IllConditionedCovarianceError(
            f"{what} that is not numerically positive definite (a collapsed component). " + COLLAPSE_HINT
        ) from None


def half_log_det(chol: np.ndarray) -> np.ndarray:
    """``0.5 log det Sigma`` from lower Cholesky factors (..., D, D) of Sigma."""
    return np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)


def weighted_log_densities(X, weights, means, covariances) -> np.ndarray:
    """``log w_sk + log N(x_i | mu_sk, Sigma_sk)`` for each draw s, point i and component k: (S, N, K).

    Batched over draws and components: ``L = chol(Sigma)``, ``y = L^-1 (x - mu)``,
    ``log N = -0.5 (D log 2 pi + |y|^2) - log det L``. `covariances` are full matrices (S, K, D, D).
    """
    chol = covariance_cholesky(covariances, "a posterior draw has a covariance matrix")  # (S, K, D, D)
    diff = X[None, None, :, :] - means[:, :, None, :]  # (S, K, N, D)
    with np.errstate(over="ignore", invalid="ignore"):  # points so far away that |y|^2 overflows
        y = np.linalg.solve(chol, np.swapaxes(diff, -1, -2))  # (S, K, D, N)
        maha = np.einsum("skdn,skdn->skn", y, y)
    maha[np.isnan(maha)] = np.inf  # inf - inf inside the solve: as far as an overflow, density 0
    with np.errstate(divide="ignore"):  # a weight of exactly 0 gives log 0 = -inf, i.e. responsibility 0
        log_joint = (
            -0.5 * (X.shape[1] * LOG_2PI + maha) - half_log_det(chol)[..., None] + np.log(weights)[..., None]
        )
    return np.swapaxes(log_joint, 1, 2)
