"""The whole model's log-density and gradient on the unconstrained scale, in numba functions of any K and D.

:func:`bayes_gmm.models.build_model` defines the model; this module computes what a sampler needs of it,
``log p(theta) + log p(X | theta) + log |J|`` at an unconstrained point and its gradient, without compiling
a PyTensor graph. Its compiled code takes the number of components, the number of features, the data and
the prior's hyper-parameters at run time, so it is compiled (and cached on disk) once per family of
covariance structures (:data:`FAMILIES`: the LKJ-Cholesky "full" and "tied", and the diagonal ones, each
its own C entry, so a fit compiles only its own family's), and serves every K, D and data set: a new model
shape costs nothing to compile. The tests hold it to ``model.compile_logp()`` and ``model.compile_dlogp()``
of the PyMC model on the same points.

The unconstrained point is laid out as PyMC lays out the model's value variables (``model.value_vars``,
each raveled in C order), so it is the point nutpie and PyMC's own samplers would use:

============  =========================  ====================================================
variable      length                     transform
============  =========================  ====================================================
weights       K - 1                      PyMC's simplex transform: z = [y, -sum y], w = softmax(z)
means         K * D                      none
covariance    see :data:`COVARIANCE_CODES`  ``chol_cov``: packed Cholesky rows, log of the diagonal;
                                         ``sigma``: log
============  =========================  ====================================================

The densities (each as the model writes it):

- weights ~ Dirichlet(a): ``sum (a_k - 1) log w_k + lgamma(sum a) - sum lgamma(a_k)``; the simplex
  transform's log-Jacobian is ``log K + sum log w_k``.
- means ~ Normal(loc_d, scale_d), elementwise.
- standard deviations with ``sd**2 ~ InverseGamma(shape, scale_d)``
  (:func:`bayes_gmm.models._variance_prior.inverse_gamma_sd_logp`); the spherical models use the mean of
  the scales.
- packed Cholesky factors L of ``diag(sd) Omega diag(sd)``, Omega ~ LKJ(eta): row norms ``sd_i`` and
  ``sum_i (2 eta - 2 + D - i)(log L_ii - log sd_i) - i log sd_i - log Z`` besides the sd terms
  (:mod:`bayes_gmm.models._lkj`).
- the likelihood ``sum_n w_n log sum_k w_k N(x_n | mu_k, Sigma_k)`` by the fused E-step kernel, with the
  data centred (``X - center``), as the model's likelihood Op does.

Hyper-parameters reach the kernel as one vector (:func:`hyper_parameters`); the covariance structure as
one of the integer codes in :data:`COVARIANCE_CODES`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numba
import numpy as np
from numba import carray, types
from numba.core.ccallback import CFunc
from numba.core.extending import intrinsic

from bayes_gmm._numba_cache import compile_callback, kernel_njit, load_cached, uncompiled_kernel_cfunc
from bayes_gmm.covariance._kernels import serial_fused_estep_statistics
from bayes_gmm.models._fused_kernels import (
    _cholesky_gradients,
    _cholesky_precision,
    _diagonal_gradients,
    _diagonal_precision,
)

FULL, TIED, DIAG, SPHERICAL, EQUAL_SPHERICAL, EQUAL_DIAGONAL = range(6)
#: covariance_type -> the kernel's code of its covariance prior and likelihood structure.
COVARIANCE_CODES = {
    "full": FULL,
    "VVV": FULL,
    "tied": TIED,
    "EEE": TIED,
    "diag": DIAG,
    "VVI": DIAG,
    "spherical": SPHERICAL,
    "VII": SPHERICAL,
    "V": SPHERICAL,
    "EII": EQUAL_SPHERICAL,
    "E": EQUAL_SPHERICAL,
    "EEI": EQUAL_DIAGONAL,
}
_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def covariance_length(code: int, n_components: int, n_features: int) -> int:
    """Number of unconstrained values of the covariance variable (``chol_cov`` or ``sigma``)."""
    packed = n_features * (n_features + 1) // 2
    return {
        FULL: n_components * packed,
        TIED: packed,
        DIAG: n_components * n_features,
        SPHERICAL: n_components,
        EQUAL_SPHERICAL: 1,
        EQUAL_DIAGONAL: n_features,
    }[code]


def n_unconstrained(code: int, n_components: int, n_features: int) -> int:
    """Length of the unconstrained point: weights, means, covariance variable."""
    return n_components - 1 + n_components * n_features + covariance_length(code, n_components, n_features)


def hyper_parameters(priors, lkj_log_normalizer: float, center: np.ndarray) -> np.ndarray:
    """The kernel's hyper-parameter vector from resolved :class:`~bayes_gmm.models.GMMPriors`.

    Layout: weights_concentration (K), means_loc (D), means_scale (D), variance_scale (D), variance_shape,
    lkj_eta, log Z of the LKJ density for D (see :func:`bayes_gmm.models._lkj.lkj_log_normalizer`), and
    the centre subtracted from the data (D).
    """
    return np.ascontiguousarray(
        np.concatenate(
            [
                np.asarray(priors.weights_concentration, dtype=float),
                np.asarray(priors.means_loc, dtype=float),
                np.asarray(priors.means_scale, dtype=float),
                np.asarray(priors.variance_scale, dtype=float),
                [float(priors.variance_shape), float(priors.lkj_eta), float(lkj_log_normalizer)],
                np.asarray(center, dtype=float),
            ]
        )
    )


@kernel_njit(error_model="numpy")
def _sd_logp(sd, shape, scale, log_gamma_shape):
    # log p(sd) with sd**2 ~ InverseGamma(shape, scale), and d log p / d log sd.
    log_sd = math.log(sd)
    inverse_variance = 1.0 / (sd * sd)
    value = _LOG_2 + shape * math.log(scale) - log_gamma_shape - (2.0 * shape + 1.0) * log_sd
    value -= scale * inverse_variance
    return value, -(2.0 * shape + 1.0) + 2.0 * scale * inverse_variance


@kernel_njit()
def _sd_index(code, k, d, n_features):
    # Which standard deviation of the diagonal structures is component k's in direction d.
    if code == DIAG:
        return k * n_features + d
    if code == SPHERICAL:
        return k
    if code == EQUAL_SPHERICAL:
        return 0
    return d


@kernel_njit(error_model="numpy")
def _simplex_weights(theta, n_components, weights):
    # PyMC's simplex transform backwards: z = [y, -sum y], w = softmax(z); returns log-sum-exp(z).
    total = 0.0
    for k in range(n_components - 1):
        total += theta[k]
    largest = -total
    for k in range(n_components - 1):
        largest = max(largest, theta[k])
    normaliser = 0.0
    for k in range(n_components):
        z = theta[k] if k < n_components - 1 else -total
        weights[k] = math.exp(z - largest)
        normaliser += weights[k]
    for k in range(n_components):
        weights[k] /= normaliser
    return largest + math.log(normaliser), total


@kernel_njit(error_model="numpy")
def _weights_part(theta, grad, n_components, concentration, grad_weights, weights, log_normaliser, total):
    """Dirichlet prior, simplex Jacobian and the likelihood's weight gradient, on the simplex coordinates.

    `weights`, `log_normaliser` and `total` are what :func:`_simplex_weights` returned for `theta`.
    """
    value = math.log(n_components)
    concentration_sum = 0.0
    expected = 0.0  # sum_k w_k dlik/dw_k
    for k in range(n_components):
        z = theta[k] if k < n_components - 1 else -total
        # Dirichlet (a_k - 1) log w_k plus the Jacobian's log w_k
        value += concentration[k] * (z - log_normaliser) - math.lgamma(concentration[k])
        concentration_sum += concentration[k]
        expected += weights[k] * grad_weights[k]
    value += math.lgamma(concentration_sum)
    # d/dz_j = a_j - A w_j + w_j (g_j - sum_k w_k g_k); y_j moves z_j up and z_K down.
    last = concentration[n_components - 1] - concentration_sum * weights[n_components - 1]
    last += weights[n_components - 1] * (grad_weights[n_components - 1] - expected)
    for k in range(n_components - 1):
        dz = concentration[k] - concentration_sum * weights[k] + weights[k] * (grad_weights[k] - expected)
        grad[k] = dz - last
    return value


@kernel_njit(error_model="numpy")
def _lkj_part(packed, grad, factor, shape, scales, eta, log_normalizer, grad_factor, log_gamma_shape):
    """LKJ-and-sd prior of one packed factor (log diagonal), its Jacobian, and the chain rule of the
    likelihood's gradient `grad_factor` (d, d) into `grad` (the packed values)."""
    n = factor.shape[0]
    value = -log_normalizer
    position = 0
    for i in range(n):
        row_start = position
        square_norm = 0.0
        for j in range(i + 1):
            entry = math.exp(packed[position]) if j == i else packed[position]
            factor[i, j] = entry
            square_norm += entry * entry
            position += 1
        sd = math.sqrt(square_norm)
        power = 2.0 * eta - 2.0 + n - i  # the LKJ power plus one
        sd_value, sd_slope = _sd_logp(sd, shape, scales[i], log_gamma_shape)
        log_sd = math.log(sd)
        value += sd_value + power * (packed[position - 1] - log_sd) - i * log_sd
        value += packed[position - 1]  # the log transform's Jacobian
        # d/dL_ij of the prior: c_i L_ij / sd_i^2, plus power / L_ii on the diagonal
        c = (sd_slope - power - i) / square_norm
        for j in range(i + 1):
            slope = c * factor[i, j] + grad_factor[i, j]
            if j == i:
                grad[row_start + j] = (slope * factor[i, i]) + power + 1.0
            else:
                grad[row_start + j] = slope
    return value


@kernel_njit(error_model="numpy", inline="always")
def _weights_and_means(theta, grad, hyper, n_components, n_features, weights, means):
    """The parts every structure shares before the likelihood: the simplex weights into `weights`, the
    centred means into `means`, the means' Normal prior with its gradient into `grad`.

    Returns (value, log_normaliser, total), the last two as :func:`_simplex_weights` returns them.
    """
    K, D = n_components, n_features
    loc = hyper[K : K + D]
    mean_scale = hyper[K + D : K + 2 * D]
    center = hyper[K + 3 * D + 3 : K + 4 * D + 3]
    log_normaliser, total = _simplex_weights(theta, K, weights)
    value = 0.0
    offset = K - 1
    for k in range(K):
        for d in range(D):
            m = theta[offset + k * D + d]
            means[k, d] = m - center[d]
            z = (m - loc[d]) / mean_scale[d]
            value += -0.5 * z * z - math.log(mean_scale[d]) - _HALF_LOG_2PI
            grad[offset + k * D + d] = -z / mean_scale[d]
    return value, log_normaliser, total


@kernel_njit(error_model="numpy", inline="always")
def _likelihood(Xt, sample_weight, means, prec, log_det, weights, cholesky):
    """The (weighted) log-likelihood and the E-step statistics of its gradient, in one pass over the data."""
    K = weights.shape[0]
    weighted = sample_weight.shape[0] > 0
    pointwise = np.empty(Xt.shape[1] if weighted else 0)
    log_weights = np.empty(K)
    for k in range(K):
        log_weights[k] = math.log(max(weights[k], 2.2250738585072014e-308))
    log_lik, nk, sx, sxx = serial_fused_estep_statistics(
        Xt, means, prec, log_det, log_weights, cholesky, sample_weight, pointwise
    )
    if weighted:
        log_lik = 0.0
        for n in range(Xt.shape[1]):
            log_lik += sample_weight[n] * pointwise[n]
    return log_lik, nk, sx, sxx


@kernel_njit(error_model="numpy", inline="always")
def _means_and_weights_gradient(theta, grad, hyper, weights, log_normaliser, total, grad_weights, grad_means):
    """The likelihood's gradient of the means into `grad`; the Dirichlet part's value (its gradient too)."""
    K, D = grad_means.shape
    for k in range(K):
        for d in range(D):
            grad[K - 1 + k * D + d] += grad_means[k, d]
    return _weights_part(theta, grad, K, hyper[0:K], grad_weights, weights, log_normaliser, total)


@kernel_njit(inline="always")
def _non_finite(theta, grad):
    """True (and `grad` all NaN) if `theta` has a non-finite value."""
    for i in range(theta.shape[0]):
        if not math.isfinite(theta[i]):
            for j in range(grad.shape[0]):
                grad[j] = math.nan
            return True
    return False


# The two families' densities are inlined (numba IR) into their C entry points: compiled once each, with no
# separately compiled copy that LLVM would optimise again inside the entry.


@kernel_njit(error_model="numpy", inline="always")
def cholesky_logp_and_grad(code, theta, grad, Xt, sample_weight, hyper, n_components):
    """Log-density of a "full" or "tied" model (`code` FULL or TIED) at the unconstrained point `theta`;
    its gradient written into `grad`.

    Parameters
    ----------
    code : int
        The covariance structure (:data:`COVARIANCE_CODES`), FULL or TIED.
    theta, grad : float64 arrays of shape (n_unconstrained,)
        The point, and where the gradient goes.
    Xt : float64 array of shape (D, N), C-contiguous
        The centred data, transposed.
    sample_weight : float64 array of shape (N,) or (0,)
        Each row's weight; empty for an unweighted model.
    hyper : float64 array
        :func:`hyper_parameters`.
    n_components : int

    Returns
    -------
    float
        The log-density: -inf (gradient NaN) at a non-finite point; at a point where the transforms
        overflow or underflow, a non-finite value or gradient (which the C entry reports to nutpie).
    """
    if _non_finite(theta, grad):
        return -math.inf
    K, D = n_components, Xt.shape[0]
    weights, means = np.empty(K), np.empty((K, D))
    value, log_normaliser, total = _weights_and_means(theta, grad, hyper, K, D, weights, means)
    offset = K - 1 + K * D
    covariance, cov_grad = theta[offset:], grad[offset:]
    n_factors = K if code == FULL else 1
    packed = D * (D + 1) // 2
    chol = np.zeros((n_factors, D, D))
    for j in range(n_factors):
        position = j * packed
        for i in range(D):
            for c in range(i + 1):
                chol[j, i, c] = math.exp(covariance[position]) if c == i else covariance[position]
                position += 1
    prec, log_det = _cholesky_precision(chol, K)
    log_lik, nk, sx, sxx = _likelihood(Xt, sample_weight, means, prec, log_det, weights, True)
    grad_weights, grad_means, grad_chol = _cholesky_gradients(weights, chol, prec, nk, sx, sxx)
    value += log_lik
    value += _means_and_weights_gradient(
        theta, grad, hyper, weights, log_normaliser, total, grad_weights, grad_means
    )
    # The LKJ-and-sd prior, its Jacobian, and the likelihood's factor gradient on the unconstrained scale.
    shape, eta, log_normalizer = hyper[K + 3 * D], hyper[K + 3 * D + 1], hyper[K + 3 * D + 2]
    variance_scale, log_gamma_shape = hyper[K + 2 * D : K + 3 * D], math.lgamma(shape)
    factor = np.empty((D, D))
    for j in range(n_factors):
        part = slice(j * packed, (j + 1) * packed)
        value += _lkj_part(
            covariance[part], cov_grad[part], factor, shape, variance_scale, eta, log_normalizer,
            grad_chol[j], log_gamma_shape,
        )  # fmt: skip
    return value


@kernel_njit(error_model="numpy", inline="always")
def diagonal_logp_and_grad(code, theta, grad, Xt, sample_weight, hyper, n_components):
    """:func:`cholesky_logp_and_grad` for the diagonal structures (DIAG, SPHERICAL, EQUAL_SPHERICAL,
    EQUAL_DIAGONAL): standard deviations on the log scale, no correlations."""
    if _non_finite(theta, grad):
        return -math.inf
    K, D = n_components, Xt.shape[0]
    weights, means = np.empty(K), np.empty((K, D))
    value, log_normaliser, total = _weights_and_means(theta, grad, hyper, K, D, weights, means)
    offset = K - 1 + K * D
    covariance, cov_grad = theta[offset:], grad[offset:]
    sd = np.empty((K, D))
    for k in range(K):
        for d in range(D):
            sd[k, d] = math.exp(covariance[_sd_index(code, k, d, D)])
    prec, log_det = _diagonal_precision(sd)
    log_lik, nk, sx, sxx = _likelihood(Xt, sample_weight, means, prec, log_det, weights, False)
    grad_weights, grad_means, grad_sd = _diagonal_gradients(weights, sd, nk, sx, sxx)
    value += log_lik
    value += _means_and_weights_gradient(
        theta, grad, hyper, weights, log_normaliser, total, grad_weights, grad_means
    )
    # The sd prior, its Jacobian, and the likelihood's sd gradient on the log scale.
    variance_scale = hyper[K + 2 * D : K + 3 * D]
    shape, log_gamma_shape = hyper[K + 3 * D], math.lgamma(hyper[K + 3 * D])
    mean_variance_scale = 0.0
    for d in range(D):
        mean_variance_scale += variance_scale[d]
    mean_variance_scale /= D
    for i in range(cov_grad.shape[0]):
        cov_grad[i] = 0.0
    for k in range(K):
        for d in range(D):
            cov_grad[_sd_index(code, k, d, D)] += grad_sd[k, d] * sd[k, d]  # d/d log sd of the likelihood
    for index in range(cov_grad.shape[0]):
        if code == DIAG:
            scale = variance_scale[index % D]
        elif code == EQUAL_DIAGONAL:
            scale = variance_scale[index]
        else:
            scale = mean_variance_scale
        sd_value, sd_slope = _sd_logp(math.exp(covariance[index]), shape, scale, log_gamma_shape)
        value += sd_value + covariance[index]  # the log transform's Jacobian
        cov_grad[index] += sd_slope + 1.0
    return value


# C entry points for nutpie: the log-density-and-gradient and the draw expansion, reading the model from a
# header of uint64 values (see :func:`model_header`) that nutpie hands back as its user data.

_HEADER_FIELDS = ("code", "n_components", "n_features", "n_samples", "n_dim", "data", "weights", "n_weights",
                  "hyper", "n_hyper")  # fmt: skip
HEADER_LENGTH = len(_HEADER_FIELDS)
_DOUBLE_P = types.CPointer(types.float64)
#: nutpie's callbacks: logp(dim, x, grad out, logp out, user data) and expand(dim, n_expanded, x, out, user data)
LOGP_SIGNATURE = types.int64(types.uint64, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, types.voidptr)
EXPAND_SIGNATURE = types.int64(types.uint64, types.uint64, _DOUBLE_P, _DOUBLE_P, types.voidptr)


@intrinsic
def _as_double_pointer(typingctx, address):
    """The integer `address` as a ``double*``."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(_DOUBLE_P))

    return _DOUBLE_P(types.uint64), codegen


def model_header(code: int, n_components: int, Xt: np.ndarray, sample_weight: np.ndarray, hyper: np.ndarray):
    """The uint64 header the C entry points read; it points into the arrays, which the caller keeps alive.

    `Xt`, `sample_weight` (empty for an unweighted model) and `hyper` must be C-contiguous float64 arrays.
    """
    for array in (Xt, sample_weight, hyper):
        if array.dtype != np.float64 or not array.flags.c_contiguous:
            raise ValueError("the model's arrays must be C-contiguous float64")
    n_features, n_samples = Xt.shape
    if sample_weight.size not in (0, n_samples) or hyper.size != n_components + 4 * n_features + 3:
        raise ValueError(
            f"the model's arrays do not fit together: {n_samples} rows, {sample_weight.size} weights, "
            f"{hyper.size} hyper-parameters for K={n_components}, D={n_features}"
        )
    values = {
        "code": code,
        "n_components": n_components,
        "n_features": n_features,
        "n_samples": n_samples,
        "n_dim": n_unconstrained(code, n_components, n_features),
        "data": Xt.ctypes.data,
        "weights": sample_weight.ctypes.data if sample_weight.size else 0,
        "n_weights": sample_weight.size,
        "hyper": hyper.ctypes.data,
        "n_hyper": hyper.size,
    }
    return np.array([values[field] for field in _HEADER_FIELDS], dtype=np.uint64)


@kernel_njit(inline="always")
def _entry_arrays(header, x_, grad_, logp_):
    """The arrays of a call of a C entry: the point, the gradient and logp outputs, the data, weights and
    hyper-parameters the header points to."""
    # Signed sizes throughout: numba types a mix of uint64 and int64 as float64.
    n_dim = np.int64(header[4])
    data = carray(_as_double_pointer(header[5]), (np.int64(header[2]), np.int64(header[3])))
    weights = carray(_as_double_pointer(header[6]), (np.int64(header[7]),))
    hyper = carray(_as_double_pointer(header[8]), (np.int64(header[9]),))
    return carray(x_, (n_dim,)), carray(grad_, (n_dim,)), carray(logp_, (1,)), data, weights, hyper


@kernel_njit(inline="always")
def _status(grad, value):
    # nutpie's return codes: 0 ok, -1 wrong dimension, 1 error, 3 non-finite gradient, 4 non-finite logp.
    for i in range(grad.shape[0]):
        if not math.isfinite(grad[i]):
            return 3
    return 0 if math.isfinite(value) else 4


# One C entry per family, each a function of its own: numba's cache names compiled code by the Python
# function (its qualified name and line), so one body made into two entries would share, and swap, entries.
def _cholesky_logp_c(dim, x_, grad_, logp_, user_data_):
    header = carray(user_data_, (HEADER_LENGTH,), np.uint64)
    code = np.int64(header[0])
    if np.int64(dim) != np.int64(header[4]) or not (code == FULL or code == TIED):
        return -1
    try:
        x, grad, logp, data, weights, hyper = _entry_arrays(header, x_, grad_, logp_)
        logp[0] = cholesky_logp_and_grad(code, x, grad, data, weights, hyper, np.int64(header[1]))
        return _status(grad, logp[0])
    except Exception:
        return 1


def _diagonal_logp_c(dim, x_, grad_, logp_, user_data_):
    header = carray(user_data_, (HEADER_LENGTH,), np.uint64)
    code = np.int64(header[0])
    if np.int64(dim) != np.int64(header[4]) or code == FULL or code == TIED:
        return -1
    try:
        x, grad, logp, data, weights, hyper = _entry_arrays(header, x_, grad_, logp_)
        logp[0] = diagonal_logp_and_grad(code, x, grad, data, weights, hyper, np.int64(header[1]))
        return _status(grad, logp[0])
    except Exception:
        return 1


def _expand_c(dim, n_expanded, x_, out_, user_data_):
    # The draws are stored unconstrained and transformed afterwards, all at once, in NumPy.
    header = carray(user_data_, (HEADER_LENGTH,), np.uint64)
    n_dim = np.int64(header[4])
    if np.int64(dim) != n_dim or np.int64(n_expanded) != n_dim:
        return -1
    x = carray(x_, (n_dim,))
    out = carray(out_, (n_dim,))
    for i in range(n_dim):
        out[i] = x[i]
    return 0


#: The families of covariance structures, each with a C log-density entry of its own: a fit compiles
#: only its own family's (the LKJ-Cholesky path of "full" and "tied" is most of the compile).
FAMILIES = ("cholesky", "diagonal")
_LOGP_BODIES = {"cholesky": _cholesky_logp_c, "diagonal": _diagonal_logp_c}
_CALLBACKS: dict[str, CFunc] = {}  # family or "expand" -> the loaded (or compiled) C entry
_COMPILING = threading.Lock()
#: The processes compiling callbacks into numba's cache that this one started, by the family they compile.
_OTHER_PROCESSES: dict[str, subprocess.Popen] = {}
#: Those of the callbacks there that are compiled at a lower priority, after the ones a fit waited for.
_BACKGROUND: set[str] = set()
#: How long to wait for such a process to save a callback before compiling it here (it takes 5-15 s on two
#: busy cores), and how often to look whether it has.
_OTHER_PROCESS_TIMEOUT_S = 300
_POLL_S = 0.05
_log = logging.getLogger(__name__)


def covariance_family(covariance_type: str) -> str:
    """The family (:data:`FAMILIES`) of a Bayesian covariance type: "cholesky" for full and tied."""
    return "cholesky" if COVARIANCE_CODES[covariance_type] in (FULL, TIED) else "diagonal"


def _uncompiled_callback(name: str) -> CFunc:
    """The C entry `name` (a family of :data:`FAMILIES`, or "expand"), neither compiled nor loaded."""
    if name == "expand":
        return uncompiled_kernel_cfunc(_expand_c, EXPAND_SIGNATURE)
    return uncompiled_kernel_cfunc(_LOGP_BODIES[name], LOGP_SIGNATURE)


def model_callbacks(covariance_type: str) -> tuple[CFunc, CFunc]:
    """The compiled C entry points (logp-and-gradient, expansion) of `covariance_type`'s family.

    Compiled once after an install (seconds), whatever the model's shape or data, one log-density entry
    per family of covariance structures (:func:`covariance_family`), and loaded from numba's cache in a
    fraction of a second afterwards. The compile runs in another Python process (:func:`start_compiling`),
    and this one loads what it saved: a callback compiled in the process that runs it calls its jitted
    callees as compiled on their own, which rounds differently in the last bits from the cached code that
    every later process runs (fast-math kernels), and a sampler turns that into other draws, so the first
    fit after an install would not repeat. Only when no other process can run (no Python executable, or
    it failed) is the callback compiled here.
    """
    family = covariance_family(covariance_type)
    with _COMPILING:
        if not {family, "expand"} <= _CALLBACKS.keys() and not _load_or_start([family]):
            for name in ("expand", family):
                if name not in _CALLBACKS:
                    _CALLBACKS[name] = _saved_by_other_process(name)
        return _CALLBACKS[family], _CALLBACKS["expand"]


def start_compiling(covariance_types=None) -> None:
    """Load the callbacks from the cache, or start compiling them into it in another process; returns at once.

    The families of `covariance_types` (an iterable of covariance types; default: every family; names
    without a Bayesian model are left out) come first; after an install, that process then compiles the
    other families too, at a lower priority, so that a later fit of another covariance type finds its
    kernel compiled (a fit that needs one before it is saved compiles it in a process of normal priority,
    rather than wait for one that a busy machine may starve).
    A caller with other work (the EM start of a fit) does it meanwhile, and :func:`model_callbacks` waits
    until the process has saved the callback it needs. The process runs in a session of its own, so that a
    Ctrl-C in the terminal does not reach it; it is killed only when it has not saved a callback waited
    for in ``_OTHER_PROCESS_TIMEOUT_S`` (an entry it leaves half written then fails to load and is
    replaced, see :func:`bayes_gmm._numba_cache.compile_callback`).
    """
    if covariance_types is None:
        families = list(FAMILIES)
    else:  # a type without a Bayesian model is refused by the fit itself, with a message that says why
        families = [covariance_family(name) for name in covariance_types if name in COVARIANCE_CODES]
    if families:
        with _COMPILING:
            _load_or_start(sorted(set(families)))


def _load_or_start(families) -> bool:
    """True if the callbacks of `families` (and the expansion) are now in place, loaded from the cache;
    else one other process is started to compile those neither loaded nor compiling already (unless it
    cannot run). On the first use after an install (no expansion cached) that process goes on to compile
    the other families. Called with ``_COMPILING`` held."""

    def missing(names):
        for name in names:
            if name in _CALLBACKS or (name in _OTHER_PROCESSES and name not in _BACKGROUND):
                continue
            callback = _uncompiled_callback(name)
            if load_cached(callback):
                _CALLBACKS[name] = callback
            else:
                yield name

    _forget_finished()
    wanted = ["expand", *families]
    now = list(missing(wanted))
    if all(name in _CALLBACKS for name in wanted):
        return True
    _stop_background_taken_over(now)
    later = list(missing(f for f in FAMILIES if f not in families)) if "expand" in now else []
    command = _python_command(now, later)
    if not now or command is None:
        return False
    try:
        process = subprocess.Popen(
            command,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **(
                # no console window for a parent without one (Jupyter, a GUI)
                {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
                if os.name == "nt"
                else {"start_new_session": True}
            ),
        )
    except (OSError, ValueError, TypeError) as error:  # no process to be had: compiled here instead
        _log.debug("compiling the model kernel in another process failed to start: %s", error)
        return False
    _OTHER_PROCESSES.update(dict.fromkeys([*now, *later], process))
    _BACKGROUND.difference_update(now)
    _BACKGROUND.update(later)
    return False


def _python_command(names=("expand", *FAMILIES), later=()) -> list[str] | None:
    """The command that compiles the callbacks `names` (families, "expand"), then at a lower priority those
    `later`, in a new Python process; None where there is no Python."""
    executable = sys.executable or ""
    # A frozen application's or an embedding host's executable is not a Python interpreter.
    if getattr(sys, "frozen", False) or not re.match(r"(python|pypy)", Path(executable).name.lower()):
        return None
    # The same package as this process, wherever it came from (relative entries such as "" resolved now, in
    # case the working directory changed since the imports).
    package_root = str(Path(__file__).resolve().parents[2])
    path = [package_root] + [
        os.path.abspath(os.fspath(entry)) for entry in sys.path if isinstance(entry, str | os.PathLike)
    ]
    code = (
        f"import sys; sys.path[:] = {path!r}; from {__name__} import _compile_here; "
        f"_compile_here({list(names)!r}, {list(later)!r})"
    )
    return [executable, "-c", code]


def _compile_here(names, later=()) -> None:
    # What the other process runs: compile (or load) the callbacks `names`, then, at a lower priority (on
    # idle cores, not slowing the fit that started it), those `later`, which nobody waits for yet; each is
    # saved to the cache as soon as it is compiled.
    for name in names:
        compile_callback(_uncompiled_callback(name))
    if later and hasattr(os, "nice"):
        os.nice(10)
    for name in later:
        compile_callback(_uncompiled_callback(name))


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    if numba.config.CACHE_DIR:  # the same numba cache as this process, however it was chosen
        environment["NUMBA_CACHE_DIR"] = numba.config.CACHE_DIR
    return environment


def _saved_by_other_process(name: str) -> CFunc:
    """The callback `name`, loaded as soon as the other process compiling it has saved it; compiled here
    if no process compiles it, or the process ended (or was stopped, stuck) without saving it."""
    process = _OTHER_PROCESSES.get(name)
    deadline = time.monotonic() + _OTHER_PROCESS_TIMEOUT_S
    while process is not None:
        callback = _uncompiled_callback(name)
        if load_cached(callback):
            _forget_finished()
            return callback
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)  # a damaged cache entry a killed one may leave is replaced (compile_callback)
            break
        time.sleep(_POLL_S)
    callback = _uncompiled_callback(name)
    if not load_cached(callback):
        compile_callback(callback)
    return callback


def _forget_finished() -> None:
    """Reap the compiling processes that have ended (no zombie left while this process runs) and forget
    them."""
    for process in set(_OTHER_PROCESSES.values()):
        if process.poll() is not None:
            _stop(process)


def _stop_background_taken_over(names) -> None:
    """Stop a process whose only work left is compiling, in the background, callbacks among `names` that a
    new process of normal priority is about to compile (two compiles of one callback would compete for the
    cores the fit needs; numba saves an entry whole, so a killed compile leaves none half written)."""
    for process in {_OTHER_PROCESSES[name] for name in names if name in _BACKGROUND}:
        own = [name for name, started in _OTHER_PROCESSES.items() if started is process]
        if all(name in _CALLBACKS or (name in _BACKGROUND and name in names) for name in own):
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Kill `process` unless it has ended, and forget it."""
    if process.poll() is None:
        process.kill()
        process.wait()
    for name in [name for name, started in _OTHER_PROCESSES.items() if started is process]:
        del _OTHER_PROCESSES[name]
        _BACKGROUND.discard(name)
    if process.returncode != 0:
        _log.debug(
            "compiling the model kernel in another process failed (exit status %s)", process.returncode
        )


def _after_fork_in_child() -> None:
    # A lock held by another thread of the parent at the fork (nutpie's chains are threads) would never be
    # released in the child, and the child cannot wait for its parent's processes.
    global _COMPILING
    _COMPILING = threading.Lock()
    _OTHER_PROCESSES.clear()
    _BACKGROUND.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
