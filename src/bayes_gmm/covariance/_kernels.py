"""The EM hot path: one fused pass over the data (numba, parallel over chunks of samples).

For every sample the kernel computes the component log-densities, the responsibilities (log-sum-exp), and
adds the sample to the sufficient statistics of the M-step, without materialising any (n_samples, ...)
temporary. The statistics are taken around the current means ``mu_k`` (the difference ``x - mu_k`` is
already needed for the density), which keeps the one-pass scatter free of the cancellation that
``E[x x^T] - mu mu^T`` suffers from:

- ``nk[k]      = sum_i r_ik``
- ``sx[k]      = sum_i r_ik (x_i - mu_k)``
- ``sxx[k]     = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T``   (only the diagonal when ``full_scatter`` is false)
- ``log_lik    = sum_i log sum_k w_k N(x_i | mu_k, Sigma_k)``

Two optional extras: per-sample weights g_i that multiply r_ik in the statistics (weighted data, and the
chain rule of a gradient), and the pointwise log-likelihood written to an output array.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayes_gmm._numba_cache import kernel_njit

_LOG_2PI = math.log(2.0 * math.pi)
_NEGLIGIBLE_LOG = -600.0
_SAMPLES_PER_CHUNK = 4096
_BLOCK = 128  # samples processed together; the per-block scratch stays in L1/L2 cache
#: Fewer samples run serially: the threads' start and wait cost more than they save, and far more when the
#: cores are busy. Per call on 2 cores (K=3, D=2): 10,880 samples 0.30 ms serial, 0.19 ms parallel on an idle
#: machine but 1.8 ms beside another parallel process; 100,000: 3.1 / 1.9 ms idle, 8 / 9-13 ms beside one.
PARALLEL_MIN_SAMPLES = 100_000


# Everything but the no-NaN/no-inf assumptions: an empty component legitimately has log weight -inf.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


_LOG2E = 1.4426950408889634
# ln 2 in two parts (Cody & Waite): n * _LN2_HI is exact for the |n| <= 866 of exp(x), x in [-600, 0].
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# 1 / i! for i = 13, ..., 0: Taylor's polynomial of exp on |r| <= ln(2) / 2 is exact to 4e-18 at degree 13.
_EXP_TAYLOR = tuple(1.0 / math.factorial(i) for i in range(13, -1, -1))


@kernel_njit(fastmath=_FASTMATH, inline="always")
def _exp_mantissa(x, scale_bits, b):
    """exp(x) for x in [-600, 0] as ``exp(r) * 2^n``: returns exp(r) and writes the bits of 2^n to
    ``scale_bits[b]``. Plain arithmetic, so the loop over samples vectorises (math.exp is a scalar libm
    call without Intel's SVML: the kernel took 1.8x as long with it, 1,000,000 x 2, K = 3). Within 1 ulp
    of math.exp compiled on its own; inlined into the kernels, whose fast-math flags let the compiler
    reassociate the two reduction steps, within 1e-13 relative (about 170 ulp near -600, where the terms
    are below 1e-260 beside the largest, 1)."""
    n = math.floor(x * _LOG2E + 0.5)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = _EXP_TAYLOR[0]
    for coefficient in _EXP_TAYLOR[1:]:
        p = p * r + coefficient
    scale_bits[b] = (np.int64(n) + 1023) << 52
    return p


def _fused_estep_statistics(
    Xt, means, prec_chol, offsets, full_scatter, n_chunks, block, logs_every, sample_weight, pointwise
):
    # Xt is the data transposed, (D, N): each block of samples is then contiguous per feature, and the
    # innermost loops run over samples, which the compiler vectorises.
    n_features, n_samples = Xt.shape
    n_components = means.shape[0]
    chunk_size = (n_samples + n_chunks - 1) // n_chunks
    weighted_samples = sample_weight.shape[0] > 0
    store_pointwise = pointwise.shape[0] > 0

    nk_parts = np.zeros((n_chunks, n_components))
    sx_parts = np.zeros((n_chunks, n_components, n_features))
    sxx_parts = np.zeros((n_chunks, n_components, n_features, n_features))
    ll_parts = np.zeros(n_chunks)

    for c in numba.prange(n_chunks):
        diff = np.empty((n_components, n_features, block))
        logp = np.empty((n_components, block))
        y = np.empty(block)
        scale = np.empty(block)  # 2^n of each exp(x) = 2^n exp(r), written as bits
        scale_bits = scale.view(np.int64)
        weighted = np.empty(block)
        max_logp = np.empty(block)
        total = np.empty(block)
        # This chunk's statistics accumulate in its own rows of the *_parts arrays (explicit loops, not
        # array assignments: numba compiles a shape-mismatch message for each, seconds on a cold cache).
        nk = nk_parts[c]
        sx = sx_parts[c]
        sxx = sxx_parts[c]
        ll = 0.0
        product = 1.0  # of per-sample normalisers (each in [1, K]); its log is taken every `logs_every`
        n_in_product = 0
        for start in range(c * chunk_size, min((c + 1) * chunk_size, n_samples), block):
            nb = min(block, min((c + 1) * chunk_size, n_samples) - start)
            for k in range(n_components):
                for d in range(n_features):
                    for b in range(nb):
                        diff[k, d, b] = Xt[d, start + b] - means[k, d]
                for b in range(nb):
                    logp[k, b] = 0.0
                for j in range(n_features):  # y_j = sum_{d <= j} diff_d P[d, j]   (P upper triangular)
                    for b in range(nb):
                        y[b] = diff[k, 0, b] * prec_chol[k, 0, j]
                    for d in range(1, j + 1):
                        for b in range(nb):
                            y[b] += diff[k, d, b] * prec_chol[k, d, j]
                    for b in range(nb):
                        logp[k, b] += y[b] * y[b]
                for b in range(nb):
                    logp[k, b] = offsets[k] - 0.5 * logp[k, b]
            for b in range(nb):
                max_logp[b] = logp[0, b]
                total[b] = 0.0
            for k in range(1, n_components):
                for b in range(nb):
                    max_logp[b] = max(max_logp[b], logp[k, b])
            for k in range(n_components):
                for b in range(nb):
                    y[b] = logp[k, b] - max_logp[b]
                    logp[k, b] = _exp_mantissa(max(y[b], _NEGLIGIBLE_LOG), scale_bits, b)
                for b in range(nb):
                    # Terms below exp(-600) are zero to double precision against the leading 1; making
                    # them exactly zero keeps subnormal numbers (100x slower arithmetic) out of the sums.
                    logp[k, b] = logp[k, b] * scale[b] if y[b] > _NEGLIGIBLE_LOG else 0.0
                    total[b] += logp[k, b]
            for b in range(nb):
                if not total[b] > 0.0:
                    # No component has a finite density here (parameters that overflow, or NaN): the
                    # point's log-likelihood is -inf (NaN for NaN input) and it contributes no statistics.
                    if store_pointwise:
                        pointwise[start + b] = max_logp[b] if math.isnan(max_logp[b]) else -math.inf
                    ll += max_logp[b] if math.isnan(max_logp[b]) else -math.inf
                    total[b] = 0.0
                    continue
                if store_pointwise:
                    pointwise[start + b] = max_logp[b] + math.log(total[b])
                ll += max_logp[b]
                product *= total[b]
                n_in_product += 1
                if n_in_product == logs_every:
                    ll += math.log(product)
                    product = 1.0
                    n_in_product = 0
                total[b] = 1.0 / total[b]
                if weighted_samples:
                    total[b] *= sample_weight[start + b]
            for k in range(n_components):
                acc = 0.0
                for b in range(nb):
                    logp[k, b] *= total[b]  # now the responsibility r_kb (times the sample weight)
                    acc += logp[k, b]
                nk[k] += acc
                for d in range(n_features):
                    acc = 0.0
                    for b in range(nb):
                        weighted[b] = logp[k, b] * diff[k, d, b]
                        acc += weighted[b]
                    sx[k, d] += acc
                    for e in range(0 if full_scatter else d, d + 1):
                        acc = 0.0
                        for b in range(nb):
                            acc += weighted[b] * diff[k, e, b]
                        sxx[k, d, e] += acc
        ll_parts[c] = ll + math.log(product)

    nk = np.zeros(n_components)
    sx = np.zeros((n_components, n_features))
    sxx = np.zeros((n_components, n_features, n_features))
    log_lik = 0.0
    for c in range(n_chunks):
        log_lik += ll_parts[c]
        for k in range(n_components):
            nk[k] += nk_parts[c, k]
            for d in range(n_features):
                sx[k, d] += sx_parts[c, k, d]
                for e in range(d + 1):
                    sxx[k, d, e] += sxx_parts[c, k, d, e]
    for k in range(n_components):
        for d in range(n_features):
            for e in range(d):
                sxx[k, e, d] = sxx[k, d, e]
    return log_lik, nk, sx, sxx


# One source, two compilations: the serial one has no thread pool to start (per call, that dominates
# on small data and oversubscribes the cores when sampling chains already run in parallel processes).
_parallel_kernel = kernel_njit(parallel=True, fastmath=_FASTMATH)(_fused_estep_statistics)
_serial_kernel = kernel_njit(parallel=False, fastmath=_FASTMATH)(_fused_estep_statistics)
_NONE = np.empty(0)


@kernel_njit()
def _kernel_settings(data_shape, log_weights, log_det, max_chunks):
    # (n_chunks, offsets = log w_k + log det P_k - D/2 log 2 pi, logs_every) for a kernel call.
    n_features, n_samples = data_shape
    n_chunks = max(1, min(-(-n_samples // _SAMPLES_PER_CHUNK), max_chunks))
    offsets = log_weights + log_det - 0.5 * n_features * _LOG_2PI
    # Each normaliser lies in [1, K]; a product of `logs_every` of them stays far from overflow.
    logs_every = int(min(64, max(1, 600 // math.log(max(log_weights.shape[0], 2)))))
    return n_chunks, offsets, logs_every


def fused_estep_statistics(
    Xt,
    means,
    prec_chol_full,
    log_det,
    log_weights,
    *,
    full_scatter,
    sample_weight=None,
    pointwise=None,
    parallel=True,
):
    """Run the fused E-step and return ``(log_lik, nk, sx, sxx)`` (see the module docstring).

    `Xt` is the data transposed, shape (n_features, n_samples), C-contiguous. `prec_chol_full` is the
    (K, D, D) upper-triangular precision Cholesky stack whatever the covariance type (see
    :meth:`bayes_gmm.covariance.CovarianceStructure.full_precision_cholesky`); `log_det` its (K,) log-determinants.
    `sample_weight` (n_samples,), if given, multiplies each sample's responsibilities in the statistics;
    `pointwise` (n_samples,), if given, receives each sample's log-likelihood. `parallel=False` runs on
    the calling thread only, as does data of fewer than ``PARALLEL_MIN_SAMPLES`` samples.
    """
    n_chunks, offsets, logs_every = _kernel_settings(
        Xt.shape, _writable(log_weights), _writable(log_det), 64 * numba.get_num_threads()
    )
    kernel = _parallel_kernel if parallel and Xt.shape[1] >= PARALLEL_MIN_SAMPLES else _serial_kernel
    return kernel(
        _writable(Xt),
        _writable(means),
        _writable(prec_chol_full),
        offsets,
        full_scatter,
        n_chunks,
        _BLOCK,
        logs_every,
        _NONE if sample_weight is None else _writable(sample_weight),
        _NONE if pointwise is None else pointwise,
    )


# Inlined (numba IR) into its jitted callers: no copy of its own that LLVM would optimise again inside each.
@kernel_njit(inline="always")
def serial_fused_estep_statistics(
    Xt, means, prec_chol_full, log_det, log_weights, full_scatter, sample_weight, pointwise
):
    """:func:`fused_estep_statistics` with ``parallel=False``, callable from numba-compiled code.

    The arguments are those of :func:`fused_estep_statistics`, all positional and C-contiguous float64
    arrays; an empty `sample_weight` or `pointwise` stands for None.
    """
    # Uncapped chunk count: it only orders the sums here, and numba.get_num_threads() is not cacheable.
    n_chunks, offsets, logs_every = _kernel_settings(Xt.shape, log_weights, log_det, Xt.shape[1])
    return _serial_kernel(
        Xt,
        means,
        prec_chol_full,
        offsets,
        full_scatter,
        n_chunks,
        _BLOCK,
        logs_every,
        sample_weight,
        pointwise,
    )


def _writable(array) -> np.ndarray:
    # Read-only or non-contiguous arrays would each make numba compile (and cache) another specialisation.
    return np.require(array, np.float64, ["C", "W"])
