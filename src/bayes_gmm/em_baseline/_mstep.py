"""M-step: mixture parameters from the sufficient statistics of one E-step.

The covariance update is the only part that depends on the covariance type; each structure's
``m_step`` does it (:mod:`bayes_gmm.covariance`).
"""

from __future__ import annotations

import numpy as np

from bayes_gmm.covariance import get_structure

# Added to each component's total responsibility so that an empty component divides by a tiny number
# instead of zero (the same guard, and value, as scikit-learn's).
_EMPTY_GUARD = 10.0 * np.finfo(np.float64).eps


def parameters_from_statistics(
    nk, sx, sxx, reference_means, reg_covar, covariance_type, previous=None, inner_iterations=None
):
    """Weights, means and covariances maximising the expected complete-data log-likelihood.

    `sx` and `sxx` are first and second moments of ``x - reference_means[k]`` weighted by the
    responsibilities; the new mean is ``reference + sx / nk`` and the scatter around it is
    ``sxx / nk - shift shift^T``. `previous` (the last covariances) starts an iterative M-step, of at most
    `inner_iterations` inner iterations (see :meth:`~bayes_gmm.covariance.CovarianceStructure.m_step`).
    """
    nk = nk + _EMPTY_GUARD
    shift = sx / nk[:, np.newaxis]
    means = reference_means + shift
    scatter = sxx / nk[:, np.newaxis, np.newaxis] - shift[:, :, np.newaxis] * shift[:, np.newaxis, :]
    covariances = get_structure(covariance_type).m_step(
        scatter, nk, reg_covar, previous=previous, inner_iterations=inner_iterations
    )
    return nk / nk.sum(), means, covariances


def parameters_from_responsibilities(
    X, resp, reg_covar, covariance_type, sample_weight=None, inner_iterations=None
):
    """M-step from an explicit (n_samples, n_components) responsibility matrix (used to initialise).

    `sample_weight` (n_samples,), if given, multiplies each sample's responsibilities; `inner_iterations`
    bounds an iterative M-step (see :meth:`~bayes_gmm.covariance.CovarianceStructure.m_step`).
    """
    if sample_weight is not None:
        resp = resp * sample_weight[:, np.newaxis]
    nk = resp.sum(axis=0) + _EMPTY_GUARD
    means = (resp.T @ X) / nk[:, np.newaxis]
    n_components, n_features = means.shape
    scatter = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        diff = X - means[k]
        scatter[k] = (resp[:, k] * diff.T) @ diff / nk[k]
    covariances = get_structure(covariance_type).m_step(
        scatter, nk, reg_covar, inner_iterations=inner_iterations
    )
    return nk / nk.sum(), means, covariances
