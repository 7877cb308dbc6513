"""C entry points of the fused likelihood kernels, for PyTensor's numba back end (and so nutpie).

When numba compiles a function that calls another jitted function, it compiles the callee into the caller
again, even when the callee sits in numba's on-disk cache: a model graph that called the fused kernels
directly paid about 3 s per process (and per fit) to recompile them inside nutpie's entry point. Here each
kernel is compiled once into a C function (``numba.cfunc``, cached on disk) whose address is registered
with LLVM under a fixed symbol name; the graph calls that symbol as an external function. The caller then
compiles in a fraction of a second, and its own cached code stays valid across processes because it refers
to the symbol by name, not by address.

The C functions also check the parameters first: a non-positive or non-finite scale, or a non-finite
weight or mean, gives a log-likelihood of -inf (and NaN gradients), which a sampler rejects as it rejects
any other impossible point, instead of an exception that could not leave a C function.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from llvmlite import binding
from numba import carray, types
from numba.core.extending import intrinsic

from bayes_gmm._numba_cache import kernel_cfunc, kernel_njit
from bayes_gmm.models._fused import (
    cholesky_mixture_logp,
    cholesky_mixture_logp_and_grad,
    cholesky_mixture_logp_grad,
    diagonal_mixture_logp,
    diagonal_mixture_logp_and_grad,
    diagonal_mixture_logp_grad,
)

_DOUBLE_P = types.CPointer(types.float64)
_INT = types.int64
#: x, n, d, weights, k, means, scale (chol: j x d x d, or sd: k x d), j (number of scale matrices)
_PARAMETERS = (_DOUBLE_P, _INT, _INT, _DOUBLE_P, _INT, _DOUBLE_P, _DOUBLE_P, _INT)
#: ... then the pointwise log-likelihood output
_LOGP_SIGNATURE = types.void(*_PARAMETERS, _DOUBLE_P)
#: ... then output_grad, its length, and the three gradient outputs
_GRAD_SIGNATURE = types.void(*_PARAMETERS, _DOUBLE_P, _INT, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P)
#: ... as the gradient, with the pointwise log-likelihood output before the three gradient outputs
_LOGP_AND_GRAD_SIGNATURE = types.void(
    *_PARAMETERS, _DOUBLE_P, _INT, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P
)


@kernel_njit()
def _copy_into(target, values):
    """``target[...] = values`` for C-contiguous arrays of one size, as a flat loop; nothing if sizes differ.

    An array assignment makes numba compile its shape-mismatch message (string formatting): seconds of
    every cold compile. The callers fill `target` with -inf or NaN first, so a size mismatch (never
    expected) leaves values a sampler rejects. ``reshape`` refuses a non-contiguous `target` rather than
    writing into a copy.
    """
    if values.size != target.size:
        return
    target_flat, values_flat = target.reshape(target.size), values.reshape(values.size)
    for i in range(values_flat.size):
        target_flat[i] = values_flat[i]


@kernel_njit()
def _all_finite(values):
    for value in values.ravel():
        if not math.isfinite(value):
            return False
    return True


@kernel_njit()
def _valid_cholesky(weights, means, chol):
    """Finite weights, means and factors (j, d, d), each factor with a positive diagonal."""
    if not (_all_finite(weights) and _all_finite(means) and _all_finite(chol)):
        return False
    for j in range(chol.shape[0]):
        for i in range(chol.shape[1]):
            if not chol[j, i, i] > 0.0:
                return False
    return True


@kernel_njit()
def _valid_diagonal(weights, means, sd):
    """Finite weights and means, finite positive standard deviations (k, d)."""
    return _all_finite(weights) and _all_finite(means) and _all_finite(sd) and np.all(sd > 0.0)


def _cholesky_logp_c(x, n, d, weights, k, means, chol, j, out):
    w, m, c = carray(weights, (k,)), carray(means, (k, d)), carray(chol, (j, d, d))
    result = carray(out, (n,))
    if _valid_cholesky(w, m, c):
        _copy_into(result, cholesky_mixture_logp(carray(x, (n, d)), w, m, c))
    else:
        result[:] = -np.inf


def _diagonal_logp_c(x, n, d, weights, k, means, sd, j, out):
    w, m, s = carray(weights, (k,)), carray(means, (k, d)), carray(sd, (k, d))
    result = carray(out, (n,))
    if _valid_diagonal(w, m, s):
        _copy_into(result, diagonal_mixture_logp(carray(x, (n, d)), w, m, s))
    else:
        result[:] = -np.inf


def _cholesky_grad_c(x, n, d, weights, k, means, chol, j, g, n_g, out_w, out_m, out_c):
    w, m, c = carray(weights, (k,)), carray(means, (k, d)), carray(chol, (j, d, d))
    gw, gm, gc = carray(out_w, (k,)), carray(out_m, (k, d)), carray(out_c, (j, d, d))
    if _valid_cholesky(w, m, c):
        grads = cholesky_mixture_logp_grad(carray(x, (n, d)), w, m, c, carray(g, (n_g,)))
        _copy_into(gw, grads[0])
        _copy_into(gm, grads[1])
        _copy_into(gc, grads[2])
    else:
        gw[:], gm[:], gc[:] = np.nan, np.nan, np.nan


def _diagonal_grad_c(x, n, d, weights, k, means, sd, j, g, n_g, out_w, out_m, out_s):
    w, m, s = carray(weights, (k,)), carray(means, (k, d)), carray(sd, (k, d))
    gw, gm, gs = carray(out_w, (k,)), carray(out_m, (k, d)), carray(out_s, (k, d))
    if _valid_diagonal(w, m, s):
        grads = diagonal_mixture_logp_grad(carray(x, (n, d)), w, m, s, carray(g, (n_g,)))
        _copy_into(gw, grads[0])
        _copy_into(gm, grads[1])
        _copy_into(gs, grads[2])
    else:
        gw[:], gm[:], gs[:] = np.nan, np.nan, np.nan


def _cholesky_logp_and_grad_c(x, n, d, weights, k, means, chol, j, g, n_g, out, out_w, out_m, out_c):
    w, m, c = carray(weights, (k,)), carray(means, (k, d)), carray(chol, (j, d, d))
    result = carray(out, (n,))
    gw, gm, gc = carray(out_w, (k,)), carray(out_m, (k, d)), carray(out_c, (j, d, d))
    if _valid_cholesky(w, m, c):
        outputs = cholesky_mixture_logp_and_grad(carray(x, (n, d)), w, m, c, carray(g, (n_g,)))
        _copy_into(result, outputs[0])
        _copy_into(gw, outputs[1])
        _copy_into(gm, outputs[2])
        _copy_into(gc, outputs[3])
    else:
        result[:] = -np.inf
        gw[:], gm[:], gc[:] = np.nan, np.nan, np.nan


def _diagonal_logp_and_grad_c(x, n, d, weights, k, means, sd, j, g, n_g, out, out_w, out_m, out_s):
    w, m, s = carray(weights, (k,)), carray(means, (k, d)), carray(sd, (k, d))
    result = carray(out, (n,))
    gw, gm, gs = carray(out_w, (k,)), carray(out_m, (k, d)), carray(out_s, (k, d))
    if _valid_diagonal(w, m, s):
        outputs = diagonal_mixture_logp_and_grad(carray(x, (n, d)), w, m, s, carray(g, (n_g,)))
        _copy_into(result, outputs[0])
        _copy_into(gw, outputs[1])
        _copy_into(gm, outputs[2])
        _copy_into(gs, outputs[3])
    else:
        result[:] = -np.inf
        gw[:], gm[:], gs[:] = np.nan, np.nan, np.nan


_cholesky_logp = types.ExternalFunction("bayes_gmm_cholesky_logp", _LOGP_SIGNATURE)
_diagonal_logp = types.ExternalFunction("bayes_gmm_diagonal_logp", _LOGP_SIGNATURE)
_cholesky_grad = types.ExternalFunction("bayes_gmm_cholesky_logp_grad", _GRAD_SIGNATURE)
_diagonal_grad = types.ExternalFunction("bayes_gmm_diagonal_logp_grad", _GRAD_SIGNATURE)
_cholesky_logp_and_grad = types.ExternalFunction("bayes_gmm_cholesky_logp_and_grad", _LOGP_AND_GRAD_SIGNATURE)
_diagonal_logp_and_grad = types.ExternalFunction("bayes_gmm_diagonal_logp_and_grad", _LOGP_AND_GRAD_SIGNATURE)


@intrinsic
def _data_pointer(typingctx, array):
    """The address of a C-contiguous float64 array's data, as a ``double*``."""

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.bitcast(data, context.get_value_type(_DOUBLE_P))

    return _DOUBLE_P(array), codegen


@kernel_njit()
def _contiguous(x, weights, means, scale):
    return (
        np.ascontiguousarray(x),
        np.ascontiguousarray(weights),
        np.ascontiguousarray(means),
        np.ascontiguousarray(scale),
    )


@kernel_njit()
def _unset_gradients(weights, means, scale):
    """Gradient outputs filled with NaN: what a caller sees if the kernel fails."""
    return np.full(weights.shape, np.nan), np.full(means.shape, np.nan), np.full(scale.shape, np.nan)


# The entries below call their C function by symbol: reach them through entry_point, which registers the
# symbol first (calling one whose symbol is not registered crashes the process).


@kernel_njit()
def _cholesky_mixture_logp_entry(x, weights, means, chol):
    """:func:`~bayes_gmm.models._fused.cholesky_mixture_logp` through its C entry point."""
    x, weights, means, chol = _contiguous(x, weights, means, chol)
    out = np.full(x.shape[0], -np.inf)  # what a caller sees if the kernel fails
    n, d = x.shape
    k, j = weights.shape[0], chol.shape[0]
    p = _data_pointer
    _cholesky_logp(p(x), n, d, p(weights), k, p(means), p(chol), j, p(out))
    return out


@kernel_njit()
def _diagonal_mixture_logp_entry(x, weights, means, sd):
    """:func:`~bayes_gmm.models._fused.diagonal_mixture_logp` through its C entry point."""
    x, weights, means, sd = _contiguous(x, weights, means, sd)
    out = np.full(x.shape[0], -np.inf)  # what a caller sees if the kernel fails
    n, d = x.shape
    k = weights.shape[0]
    p = _data_pointer
    _diagonal_logp(p(x), n, d, p(weights), k, p(means), p(sd), k, p(out))
    return out


@kernel_njit()
def _cholesky_mixture_logp_grad_entry(x, weights, means, chol, output_grad):
    """:func:`~bayes_gmm.models._fused.cholesky_mixture_logp_grad` through its C entry point."""
    x, weights, means, chol = _contiguous(x, weights, means, chol)
    g = np.ascontiguousarray(output_grad)
    grad_w, grad_m, grad_c = _unset_gradients(weights, means, chol)
    n, d = x.shape
    k, j = weights.shape[0], chol.shape[0]
    p = _data_pointer
    _cholesky_grad(
        p(x), n, d, p(weights), k, p(means), p(chol), j, p(g), g.shape[0], p(grad_w), p(grad_m), p(grad_c)
    )
    return grad_w, grad_m, grad_c


@kernel_njit()
def _diagonal_mixture_logp_grad_entry(x, weights, means, sd, output_grad):
    """:func:`~bayes_gmm.models._fused.diagonal_mixture_logp_grad` through its C entry point."""
    x, weights, means, sd = _contiguous(x, weights, means, sd)
    g = np.ascontiguousarray(output_grad)
    grad_w, grad_m, grad_s = _unset_gradients(weights, means, sd)
    n, d = x.shape
    k = weights.shape[0]
    p = _data_pointer
    _diagonal_grad(
        p(x), n, d, p(weights), k, p(means), p(sd), k, p(g), g.shape[0], p(grad_w), p(grad_m), p(grad_s)
    )
    return grad_w, grad_m, grad_s


@kernel_njit()
def _cholesky_mixture_logp_and_grad_entry(x, weights, means, chol, output_grad):
    """:func:`~bayes_gmm.models._fused.cholesky_mixture_logp_and_grad` through its C entry point."""
    x, weights, means, chol = _contiguous(x, weights, means, chol)
    g = np.ascontiguousarray(output_grad)
    out = np.full(x.shape[0], -np.inf)  # what a caller sees if the kernel fails
    grad_w, grad_m, grad_c = _unset_gradients(weights, means, chol)
    n, d = x.shape
    k, j = weights.shape[0], chol.shape[0]
    p = _data_pointer
    _cholesky_logp_and_grad(
        p(x),
        n,
        d,
        p(weights),
        k,
        p(means),
        p(chol),
        j,
        p(g),
        g.shape[0],
        p(out),
        p(grad_w),
        p(grad_m),
        p(grad_c),
    )
    return out, grad_w, grad_m, grad_c


@kernel_njit()
def _diagonal_mixture_logp_and_grad_entry(x, weights, means, sd, output_grad):
    """:func:`~bayes_gmm.models._fused.diagonal_mixture_logp_and_grad` through its C entry point."""
    x, weights, means, sd = _contiguous(x, weights, means, sd)
    g = np.ascontiguousarray(output_grad)
    out = np.full(x.shape[0], -np.inf)  # what a caller sees if the kernel fails
    grad_w, grad_m, grad_s = _unset_gradients(weights, means, sd)
    n, d = x.shape
    k = weights.shape[0]
    p = _data_pointer
    _diagonal_logp_and_grad(
        p(x),
        n,
        d,
        p(weights),
        k,
        p(means),
        p(sd),
        k,
        p(g),
        g.shape[0],
        p(out),
        p(grad_w),
        p(grad_m),
        p(grad_s),
    )
    return out, grad_w, grad_m, grad_s


#: The kinds of entry point, in the order of the Ops: pointwise log-likelihood, its gradient, both in one pass.
KINDS = ("logp", "grad", "logp_and_grad")

#: (structure, kind) -> (the C function's Python body, the external function (symbol, signature) the entry
#: calls, the entry)
_ENTRIES = {
    ("cholesky", "logp"): (_cholesky_logp_c, _cholesky_logp, _cholesky_mixture_logp_entry),
    ("cholesky", "grad"): (_cholesky_grad_c, _cholesky_grad, _cholesky_mixture_logp_grad_entry),
    ("cholesky", "logp_and_grad"): (
        _cholesky_logp_and_grad_c,
        _cholesky_logp_and_grad,
        _cholesky_mixture_logp_and_grad_entry,
    ),
    ("diagonal", "logp"): (_diagonal_logp_c, _diagonal_logp, _diagonal_mixture_logp_entry),
    ("diagonal", "grad"): (_diagonal_grad_c, _diagonal_grad, _diagonal_mixture_logp_grad_entry),
    ("diagonal", "logp_and_grad"): (
        _diagonal_logp_and_grad_c,
        _diagonal_logp_and_grad,
        _diagonal_mixture_logp_and_grad_entry,
    ),
}
_REGISTERED: dict[str, object] = {}  # symbol -> its compiled C function, kept alive while registered
_REGISTERING = threading.Lock()


def entry_point(structure: str, kind: str):
    """The numba entry of one fused kernel, its C function compiled (or loaded from cache) and registered.

    Only the C functions a model uses are compiled: each costs several seconds the first time (a full
    compile of the kernels it wraps), a fraction of a second from the cache afterwards. The symbol must be
    registered before the entry, or any code calling it, is compiled or loaded from a cache.

    Parameters
    ----------
    structure : {"cholesky", "diagonal"}
        The scale parametrisation of the Op (``MixtureLogp.structure``).
    kind : {"logp", "grad", "logp_and_grad"}
        Which of the three kernels.
    """
    c_body, external, entry = _ENTRIES[structure, kind]
    with _REGISTERING:
        if external.symbol not in _REGISTERED:
            callback = kernel_cfunc(external.sig)(c_body)
            binding.add_symbol(external.symbol, callback.address)
            _REGISTERED[external.symbol] = callback
    return entry
