"""The marginal GMM likelihood as one vectorised PyTensor expression, and its NumPy random generator.

The discrete assignments are summed out: log p(x_n) = logsumexp_k [log w_k + log N(x_n | mu_k, Sigma_k)],
computed for all observations and components at once (no loop over data). Covariances reach the likelihood
in one of two structures:

- ``"cholesky"``: lower Cholesky factors L of the covariances, shape (J, D, D) with J = K (full) or J = 1
  (tied). The standardised residuals are z = L^-1 x - L^-1 mu, so the data enter through one tensordot
  with the K small inverses (a GEMM), which is cheaper to differentiate than K batched triangular solves.
- ``"diagonal"``: standard deviations, shape (K, D) (diag; spherical repeats one value over D).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from bayes_gmm.models._fused import MixtureLogp

LOG_2PI = float(np.log(2.0 * np.pi))
SCALE_STRUCTURES = ("cholesky", "diagonal")
LIKELIHOOD_IMPLEMENTATIONS = ("fused", "graph")


def _drop_batch_dims(param, core_ndim: int):
    # CustomDist with a gufunc signature hands parameters with extra size-1 leading batch dimensions.
    extra = tuple(range(param.ndim - core_ndim))
    if not extra:
        return param
    if all(param.type.broadcastable[axis] for axis in extra):
        # Known to be 1 long: a squeeze, whose gradient is a reshape (indexing's is a zero-filled copy).
        return pt.squeeze(param, axis=extra)
    return param[(0,) * len(extra)]


def component_log_densities(value, means, scale, structure: str, n_features: int):
    """Log N(x_n | mu_k, Sigma_k) for every observation and component, shape (n_obs, n_components).

    Parameters
    ----------
    value : tensor of shape (n_obs, n_features)
        Observations (best centred, see :func:`make_mixture_logp`).
    means : tensor of shape (n_components, n_features)
    scale : tensor
        Cholesky factors (J, D, D) for ``structure="cholesky"``, standard deviations (K, D) for
        ``"diagonal"``.
    structure : {"cholesky", "diagonal"}
    n_features : int
        D, known when the model is built (the unrolled triangular inverse needs it as a constant).
    """
    if structure == "cholesky":
        inverse = lower_triangular_inverse(scale, n_features)
        projected = pt.tensordot(value, inverse, axes=[[1], [2]])  # (N, J, D): L_j^-1 x_n
        offsets = pt.sum(inverse * means[:, None, :], axis=-1)  # (K, D): L_k^-1 mu_k
        z = projected - offsets[None, :, :]
        log_det = pt.sum(pt.log(pt.diagonal(scale, axis1=-2, axis2=-1)), axis=-1)  # (J,)
    elif structure == "diagonal":
        z = (value[:, None, :] - means[None, :, :]) / scale[None, :, :]
        log_det = pt.sum(pt.log(scale), axis=-1)  # (K,)
    else:
        raise ValueError(f"structure must be one of {SCALE_STRUCTURES}; got {structure!r}.")
    return -0.5 * pt.sum(pt.square(z), axis=-1) - log_det[None, :] - 0.5 * n_features * LOG_2PI


def lower_triangular_inverse(chol, n: int):
    """Inverse of lower-triangular matrices (..., n, n) by forward substitution, unrolled over rows.

    PyTensor's batched ``solve_triangular`` runs in Python per matrix (about 15 ms per call here, 99% of
    the gradient's time); these n(n-1)/2 small vectorised updates compile to C elementwise code.
    """
    identity = np.eye(n)
    rows = []
    for i in range(n):
        row = pt.as_tensor(identity[i])
        for j in range(i):
            row = row - chol[..., i, j, None] * rows[j]
        rows.append(row / chol[..., i, i, None])
    return pt.stack(rows, axis=-2)


def make_mixture_logp(structure: str, center, implementation: str = "fused", sample_weight=None):
    """Return the pointwise marginal log-likelihood function used as the ``CustomDist`` logp.

    ``center`` (the data mean, an array or a tensor of shape (n_features,)) is subtracted from observations and means before the algebra, so that the
    standardised residuals do not lose digits when the data sit far from the origin. ``implementation``
    is "fused" (one compiled Op with a hand-written gradient, :mod:`bayes_gmm.models._fused`) or "graph"
    (PyTensor operations, differentiated by PyTensor; needed by the JAX back end). ``sample_weight`` (a
    tensor of shape (n_obs,), optional) multiplies each point's log-likelihood: the fused gradient Op
    weights each point's statistics by its incoming gradient, so the weighted sum is differentiated in the
    same single pass.
    """
    # A data container's value, not an evaluation of its shape (that would compile a function).
    n_features = len(center.get_value() if hasattr(center, "get_value") else center)
    scale_ndim = 3 if structure == "cholesky" else 2

    def mixture_logp(value, weights, means, scale):
        weights = _drop_batch_dims(weights, 1)
        means = _drop_batch_dims(means, 2)
        scale = _drop_batch_dims(scale, scale_ndim)
        if implementation == "fused":
            pointwise = MixtureLogp(structure)(value - center, weights, means - center, scale)
        else:
            log_dens = component_log_densities(value - center, means - center, scale, structure, n_features)
            pointwise = pt.logsumexp(pt.log(weights)[None, :] + log_dens, axis=-1)
        return pointwise if sample_weight is None else pointwise * sample_weight

    return mixture_logp


def make_mixture_random(structure: str):
    """Return the NumPy generator of mixture draws used for prior and posterior predictive sampling."""
    scale_ndim = 3 if structure == "cholesky" else 2

    def mixture_random(weights, means, scale, rng=None, size=None):
        weights = _first_batch_entry(weights, 1)
        means = _first_batch_entry(means, 2)
        scale = _first_batch_entry(scale, scale_ndim)
        shape = tuple(size) if size is not None else (1,)
        n_draws = int(np.prod(shape))
        labels = rng.choice(len(weights), p=weights / weights.sum(), size=n_draws)
        noise = rng.standard_normal((n_draws, means.shape[1]))
        if structure == "cholesky":
            factors = scale[labels] if scale.shape[0] > 1 else scale[np.zeros(n_draws, dtype=int)]
            draws = means[labels] + np.einsum("nij,nj->ni", factors, noise)
        else:
            draws = means[labels] + scale[labels] * noise
        return draws.reshape((*shape, means.shape[1]))

    return mixture_random


def _first_batch_entry(param, core_ndim: int) -> np.ndarray:
    param = np.asarray(param, dtype=np.float64)
    return param.reshape((-1, *param.shape[param.ndim - core_ndim :]))[0]
