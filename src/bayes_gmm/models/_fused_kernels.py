"""The numba kernels of the marginal GMM log-likelihood and its hand-written gradient.

They run the fused E-step kernel that EM uses (:mod:`bayes_gmm.covariance._kernels`), and assemble the
gradient from the same kernel's weighted sufficient statistics (R_k = sum_n g_n r_nk, s_k = sum_n g_n r_nk
(x_n - mu_k), S_k = the weighted scatter, with g the incoming output gradient):

- d/dw_k  = R_k / w_k
- d/dmu_k = Sigma_k^-1 s_k
- d/dL_k  = tril(Sigma_k^-1 S_k L_k^-T) - R_k diag(1 / L_k,ii)       (L_k the Cholesky factor of Sigma_k)
- d/dsd_kd = (S_k,dd / sd_kd^2 - R_k) / sd_kd                         (diagonal covariances)

The kernels use NumPy's floating-point error model: a scale that underflows to zero during a wild sampler
step gives an infinite or NaN log-likelihood, which the sampler rejects, rather than a ZeroDivisionError
that would end the run (or, inside a C callback, be lost).

The PyTensor Ops of :mod:`bayes_gmm.models._fused` run them, and so does nutpie's model kernel
(:mod:`bayes_gmm.models._model_kernel`); this module imports no PyTensor, so the process that compiles the
model kernel does not either.
"""

from __future__ import annotations

import math

import numpy as np

from bayes_gmm._numba_cache import kernel_njit
from bayes_gmm.covariance._kernels import serial_fused_estep_statistics

_TINY = np.finfo(np.float64).tiny


@kernel_njit(error_model="numpy")
def _cholesky_precision(chol, n_components):
    # P = L^-T by forward substitution (a NumPy batched solve costs ~70 us per call on 3 2x2 matrices).
    n_factors, n, _ = chol.shape
    prec = np.zeros((n_components, n, n))
    log_det = np.zeros(n_components)
    for j in range(n_factors):
        inverse = np.zeros((n, n))
        for i in range(n):
            for c in range(i + 1):
                acc = 1.0 if c == i else 0.0
                for m in range(c, i):
                    acc -= chol[j, i, m] * inverse[m, c]
                inverse[i, c] = acc / chol[j, i, i]
        value = 0.0
        for i in range(n):
            value -= math.log(chol[j, i, i])
        for k in range(n_components) if n_factors == 1 else range(j, j + 1):
            for a in range(n):  # prec[k] = inverse.T, as loops (see _kernels: no shape-check message)
                for b in range(n):
                    prec[k, a, b] = inverse[b, a]
            log_det[k] = value
    return prec, log_det


@kernel_njit(error_model="numpy")
def _diagonal_precision(sd):
    n_components, n = sd.shape
    prec = np.zeros((n_components, n, n))
    log_det = np.zeros(n_components)
    for k in range(n_components):
        for i in range(n):
            prec[k, i, i] = 1.0 / sd[k, i]
            log_det[k] -= math.log(sd[k, i])
    return prec, log_det


@kernel_njit(error_model="numpy")
def _floored(weights):
    # Softmax weights are positive; the floor only guards an underflow to exactly 0 (log -> -708, not -inf,
    # and R_k / w_k -> 0 / tiny = 0, not NaN). The value and the gradient both use this one floor.
    return np.maximum(weights, _TINY)


@kernel_njit(error_model="numpy")
def _statistics(x, weights, means, prec, log_det, full_scatter, sample_weight, pointwise):
    log_weights = np.log(_floored(weights))
    return serial_fused_estep_statistics(
        np.ascontiguousarray(x.T),
        np.ascontiguousarray(means),
        prec,
        log_det,
        log_weights,
        full_scatter,
        sample_weight,
        pointwise,
    )


@kernel_njit(error_model="numpy")
def _pointwise(x, weights, means, prec, log_det):
    pointwise = np.empty(x.shape[0])
    _statistics(x, weights, means, prec, log_det, False, np.empty(0), pointwise)
    return pointwise


@kernel_njit(error_model="numpy")
def _weighted_statistics(x, weights, means, prec, log_det, full_scatter, output_grad, pointwise):
    # `pointwise` (n_samples,) receives the (unweighted) pointwise log-likelihood in the same pass; an
    # empty array skips it.
    n_samples = x.shape[0]
    # The incoming gradient of a summed log-likelihood may arrive as one broadcastable value.
    g = np.full(n_samples, output_grad[0]) if output_grad.shape[0] != n_samples else output_grad
    _, nk, sx, sxx = _statistics(
        x, weights, means, prec, log_det, full_scatter, np.ascontiguousarray(g), pointwise
    )
    return nk, sx, sxx


@kernel_njit(error_model="numpy")
def cholesky_mixture_logp(x, weights, means, chol):
    """Pointwise log-likelihood, covariances given by lower Cholesky factors (J, D, D), J = K or 1."""
    prec, log_det = _cholesky_precision(chol, means.shape[0])
    return _pointwise(x, weights, means, prec, log_det)


@kernel_njit(error_model="numpy")
def diagonal_mixture_logp(x, weights, means, sd):
    """Pointwise log-likelihood, covariances given by standard deviations (K, D)."""
    prec, log_det = _diagonal_precision(sd)
    return _pointwise(x, weights, means, prec, log_det)


@kernel_njit(error_model="numpy")
def _cholesky_gradients(weights, chol, prec, nk, sx, sxx):
    # Gradients with respect to weights, means and Cholesky factors from the weighted statistics.
    n_components, n = sx.shape
    grad_means = np.zeros((n_components, n))
    grad_chol = np.zeros(chol.shape)  # a tied factor (J = 1) collects the terms of every component
    precision = np.zeros((n, n))
    product = np.zeros((n, n))
    for k in range(n_components):
        j = k if chol.shape[0] > 1 else 0
        precision[:] = 0.0  # Sigma^-1 = P P^T
        for a in range(n):
            for b in range(n):
                for m in range(n):
                    precision[a, b] += prec[k, a, m] * prec[k, b, m]
        product[:] = 0.0  # Sigma^-1 S_k
        for a in range(n):
            for b in range(n):
                grad_means[k, a] += precision[a, b] * sx[k, b]
                for m in range(n):
                    product[a, b] += precision[a, m] * sxx[k, m, b]
        for a in range(n):  # tril(Sigma^-1 S_k P) - R_k diag(1 / L_ii)
            for b in range(a + 1):
                for m in range(n):
                    grad_chol[j, a, b] += product[a, m] * prec[k, m, b]
            grad_chol[j, a, a] -= nk[k] / chol[j, a, a]
    return nk / _floored(weights), grad_means, grad_chol


@kernel_njit(error_model="numpy")
def _diagonal_gradients(weights, sd, nk, sx, sxx):
    # Gradients with respect to weights, means and standard deviations from the weighted statistics.
    variance = np.square(sd)
    grad_sd = np.empty(sd.shape)
    for k in range(sd.shape[0]):
        for d in range(sd.shape[1]):
            grad_sd[k, d] = (sxx[k, d, d] / variance[k, d] - nk[k]) / sd[k, d]
    return nk / _floored(weights), sx / variance, grad_sd


@kernel_njit(error_model="numpy")
def cholesky_mixture_logp_grad(x, weights, means, chol, output_grad):
    """Gradients of ``sum_n g_n log p(x_n)`` with respect to weights, means and Cholesky factors."""
    prec, log_det = _cholesky_precision(chol, means.shape[0])
    nk, sx, sxx = _weighted_statistics(x, weights, means, prec, log_det, True, output_grad, np.empty(0))
    return _cholesky_gradients(weights, chol, prec, nk, sx, sxx)


@kernel_njit(error_model="numpy")
def diagonal_mixture_logp_grad(x, weights, means, sd, output_grad):
    """Gradients of ``sum_n g_n log p(x_n)`` with respect to weights, means and standard deviations."""
    prec, log_det = _diagonal_precision(sd)
    nk, sx, sxx = _weighted_statistics(x, weights, means, prec, log_det, False, output_grad, np.empty(0))
    return _diagonal_gradients(weights, sd, nk, sx, sxx)


@kernel_njit(error_model="numpy")
def cholesky_mixture_logp_and_grad(x, weights, means, chol, output_grad):
    """Pointwise log-likelihood and the gradients of :func:`cholesky_mixture_logp_grad`, in one pass."""
    prec, log_det = _cholesky_precision(chol, means.shape[0])
    pointwise = np.empty(x.shape[0])
    nk, sx, sxx = _weighted_statistics(x, weights, means, prec, log_det, True, output_grad, pointwise)
    grad_weights, grad_means, grad_chol = _cholesky_gradients(weights, chol, prec, nk, sx, sxx)
    return pointwise, grad_weights, grad_means, grad_chol


@kernel_njit(error_model="numpy")
def diagonal_mixture_logp_and_grad(x, weights, means, sd, output_grad):
    """Pointwise log-likelihood and the gradients of :func:`diagonal_mixture_logp_grad`, in one pass."""
    prec, log_det = _diagonal_precision(sd)
    pointwise = np.empty(x.shape[0])
    nk, sx, sxx = _weighted_statistics(x, weights, means, prec, log_det, False, output_grad, pointwise)
    grad_weights, grad_means, grad_sd = _diagonal_gradients(weights, sd, nk, sx, sxx)
    return pointwise, grad_weights, grad_means, grad_sd
