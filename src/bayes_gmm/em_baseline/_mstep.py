"""M-step: mixture parameters from the sufficient statistics of one E-step.

The covariance update is the only part that depends on the covariance type; it is one small function
per type, chosen from :data:`COVARIANCE_ESTIMATORS`.
"""

from __future__ import annotations

import numpy as np

# Added to each component's total responsibility so that an empty component divides by a tiny number
# instead of zero (the same guard, and value, as scikit-learn's).
_EMPTY_GUARD = 10.0 * np.finfo(np.float64).eps


def _full(scatter, nk, reg_covar):
    n_features = scatter.shape[-1]
    return scatter + reg_covar * np.eye(n_features)


def _tied(scatter, nk, reg_covar):
    n_features = scatter.shape[-1]
    return np.tensordot(nk, scatter, axes=1) / nk.sum() + reg_covar * np.eye(n_features)


def _diag(scatter, nk, reg_covar):
    return np.diagonal(scatter, axis1=1, axis2=2) + reg_covar


def _spherical(scatter, nk, reg_covar):
    return _diag(scatter, nk, reg_covar).mean(axis=1)


COVARIANCE_ESTIMATORS = {"full": _full, "tied": _tied, "diag": _diag, "spherical": _spherical}

# The diagonal types only need the diagonal of the per-component scatter from the E-step.
NEEDS_FULL_SCATTER = {"full": True, "tied": True, "diag": False, "spherical": False}


def parameters_from_statistics(nk, sx, sxx, reference_means, reg_covar, covariance_type):
    """Weights, means and covariances maximising the expected complete-data log-likelihood.

    `sx` and `sxx` are first and second moments of ``x - reference_means[k]`` weighted by the
    responsibilities; the new mean is ``reference + sx / nk`` and the scatter around it is
    ``sxx / nk - shift shift^T``.
    """
    nk = nk + _EMPTY_GUARD
    shift = sx / nk[:, np.newaxis]
    means = reference_means + shift
    scatter = sxx / nk[:, np.newaxis, np.newaxis] - shift[:, :, np.newaxis] * shift[:, np.newaxis, :]
    covariances = COVARIANCE_ESTIMATORS[covariance_type](scatter, nk, reg_covar)
    return nk / nk.sum(), means, covariances


def parameters_from_responsibilities(X, resp, reg_covar, covariance_type):
    """M-step from an explicit (n_samples, n_components) responsibility matrix (used to initialise)."""
    nk = resp.sum(axis=0) + _EMPTY_GUARD
    means = (resp.T @ X) / nk[:, np.newaxis]
    n_components, n_features = means.shape
    scatter = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        diff = X - means[k]
        scatter[k] = (resp[:, k] * diff.T) @ diff / nk[k]
    covariances = COVARIANCE_ESTIMATORS[covariance_type](scatter, nk, reg_covar)
    return nk / nk.sum(), means, covariances
