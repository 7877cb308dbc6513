"""C entry points of the fused likelihood kernels, for PyTensor's numba back end (PyMC's compiled functions).

When numba compiles a function that calls another jitted function, it compiles the callee into the caller
again, even when the callee sits in numba's on-disk cache: a model graph that called the fused kernels
directly paid about 3 s per process (and per fit) to recompile them inside nutpie's entry point. Here each
kernel is compiled once into a C function (``numba.cfunc``, cached on disk), and the graph calls it through
a cell that holds its address, registered with LLVM under a fixed symbol name. The caller then compiles in a
fraction of a second, its own cached code stays valid across processes (it names the cell, not an
address), and it can be compiled before the kernel exists.

The C functions also check the parameters first: a non-positive or non-finite scale, or a non-finite
weight or mean, gives a log-likelihood of -inf (and NaN gradients), which a sampler rejects as it rejects
any other impossible point, instead of an exception that could not leave a C function.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading

import numpy as np
from llvmlite import binding, ir
from numba import carray, types
from numba.core.ccallback import CFunc
from numba.core.extending import intrinsic

from bayes_gmm._numba_cache import compile_callback, kernel_njit, uncompiled_kernel_cfunc
from bayes_gmm.models._fused_kernels import (
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


class _KernelAddress:
    """A 64-bit cell, registered with LLVM under `symbol`, for the address of one compiled C function.

    Code calls the function through the cell (:meth:`call`), so it can be compiled, or loaded from a cache,
    before the function itself exists; the call does nothing while the cell is 0, leaving the caller's
    outputs as it filled them (-inf, NaN).
    """

    def __init__(self, symbol: str, signature):
        self.symbol, self.signature = symbol, signature
        self.cell = ctypes.c_uint64(0)
        binding.add_symbol(symbol, ctypes.addressof(self.cell))
        self.call = self._intrinsic()

    def _intrinsic(self):
        symbol, formal, returns = self.symbol, self.signature.args, self.signature.return_type

        def codegen(context, builder, sig, args):
            (arguments_type,), (arguments,) = sig.args, args
            values = [
                context.cast(builder, builder.extract_value(arguments, i), actual, wanted)
                for i, (actual, wanted) in enumerate(zip(arguments_type, formal, strict=True))
            ]
            module = builder.module
            cell = module.globals.get(symbol) or ir.GlobalVariable(module, ir.IntType(64), symbol)
            address = builder.load(cell)
            # The types numba gives the C function (a void one returns a null i8*, ignored here).
            function = ir.FunctionType(
                context.get_value_type(returns), [context.get_value_type(arg) for arg in formal]
            )
            with builder.if_then(builder.icmp_unsigned("!=", address, address.type(0)), likely=True):
                builder.call(builder.inttoptr(address, function.as_pointer()), values)
            return context.get_dummy_value()

        @intrinsic
        def call(typingctx, arguments):
            """Call the C function with the tuple `arguments`."""
            if isinstance(arguments, types.BaseTuple) and len(arguments) == len(formal):
                return types.void(arguments), codegen
            return None

        return call


_SIGNATURES = {"logp": _LOGP_SIGNATURE, "grad": _GRAD_SIGNATURE, "logp_and_grad": _LOGP_AND_GRAD_SIGNATURE}
#: (structure, kind) -> where the entry finds the C function. The symbols are registered once, at import.
_ADDRESSES = {
    (structure, kind): _KernelAddress(f"bayes_gmm_{structure}_{kind}_address", signature)
    for structure in ("cholesky", "diagonal")
    for kind, signature in _SIGNATURES.items()
}
_cholesky_logp = _ADDRESSES["cholesky", "logp"].call
_diagonal_logp = _ADDRESSES["diagonal", "logp"].call
_cholesky_grad = _ADDRESSES["cholesky", "grad"].call
_diagonal_grad = _ADDRESSES["diagonal", "grad"].call
_cholesky_logp_and_grad = _ADDRESSES["cholesky", "logp_and_grad"].call
_diagonal_logp_and_grad = _ADDRESSES["diagonal", "logp_and_grad"].call


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


# The entries below call their C function through its address: reach them through entry_point, which puts
# the C function in place. Before that a call returns -inf and NaN.


@kernel_njit()
def _cholesky_mixture_logp_entry(x, weights, means, chol):
    """:func:`~bayes_gmm.models._fused_kernels.cholesky_mixture_logp` through its C entry point."""
    x, weights, means, chol = _contiguous(x, weights, means, chol)
    out = np.full(x.shape[0], -np.inf)  # what a caller sees if the kernel fails
    n, d = x.shape
    k, j = weights.shape[0], chol.shape[0]
    p = _data_pointer
    _cholesky_logp((p(x), n, d, p(weights), k, p(means), p(chol), j, p(out)))
    return out


@kernel_njit()
def _diagonal_mixture_logp_entry(x, weights, means, sd):
    """:func:`~bayes_gmm.models._fused_kernels.diagonal_mixture_logp` through its C entry point."""
    x, weights, means, sd = _contiguous(x, weights, means, sd)
    out = np.full(x.shape[0], -np.inf)  # what a caller sees if the kernel fails
    n, d = x.shape
    k = weights.shape[0]
    p = _data_pointer
    _diagonal_logp((p(x), n, d, p(weights), k, p(means), p(sd), k, p(out)))
    return out


@kernel_njit()
def _cholesky_mixture_logp_grad_entry(x, weights, means, chol, output_grad):
    """:func:`~bayes_gmm.models._fused_kernels.cholesky_mixture_logp_grad` through its C entry point."""
    x, weights, means, chol = _contiguous(x, weights, means, chol)
    g = np.ascontiguousarray(output_grad)
    grad_w, grad_m, grad_c = _unset_gradients(weights, means, chol)
    n, d = x.shape
    k, j = weights.shape[0], chol.shape[0]
    p = _data_pointer
    _cholesky_grad(
        (p(x), n, d, p(weights), k, p(means), p(chol), j, p(g), g.shape[0], p(grad_w), p(grad_m), p(grad_c))
    )
    return grad_w, grad_m, grad_c


@kernel_njit()
def _diagonal_mixture_logp_grad_entry(x, weights, means, sd, output_grad):
    """:func:`~bayes_gmm.models._fused_kernels.diagonal_mixture_logp_grad` through its C entry point."""
    x, weights, means, sd = _contiguous(x, weights, means, sd)
    g = np.ascontiguousarray(output_grad)
    grad_w, grad_m, grad_s = _unset_gradients(weights, means, sd)
    n, d = x.shape
    k = weights.shape[0]
    p = _data_pointer
    _diagonal_grad(
        (p(x), n, d, p(weights), k, p(means), p(sd), k, p(g), g.shape[0], p(grad_w), p(grad_m), p(grad_s))
    )
    return grad_w, grad_m, grad_s


@kernel_njit()
def _cholesky_mixture_logp_and_grad_entry(x, weights, means, chol, output_grad):
    """:func:`~bayes_gmm.models._fused_kernels.cholesky_mixture_logp_and_grad` through its C entry point."""
    x, weights, means, chol = _contiguous(x, weights, means, chol)
    g = np.ascontiguousarray(output_grad)
    out = np.full(x.shape[0], -np.inf)  # what a caller sees if the kernel fails
    grad_w, grad_m, grad_c = _unset_gradients(weights, means, chol)
    n, d = x.shape
    k, j = weights.shape[0], chol.shape[0]
    p = _data_pointer
    _cholesky_logp_and_grad(
        (
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
    )
    return out, grad_w, grad_m, grad_c


@kernel_njit()
def _diagonal_mixture_logp_and_grad_entry(x, weights, means, sd, output_grad):
    """:func:`~bayes_gmm.models._fused_kernels.diagonal_mixture_logp_and_grad` through its C entry point."""
    x, weights, means, sd = _contiguous(x, weights, means, sd)
    g = np.ascontiguousarray(output_grad)
    out = np.full(x.shape[0], -np.inf)  # what a caller sees if the kernel fails
    grad_w, grad_m, grad_s = _unset_gradients(weights, means, sd)
    n, d = x.shape
    k = weights.shape[0]
    p = _data_pointer
    _diagonal_logp_and_grad(
        (
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
    )
    return out, grad_w, grad_m, grad_s


#: The kinds of entry point, in the order of the Ops: pointwise log-likelihood, its gradient, both in one pass.
KINDS = ("logp", "grad", "logp_and_grad")

#: (structure, kind) -> (the C function's Python body, the entry)
_ENTRIES = {
    ("cholesky", "logp"): (_cholesky_logp_c, _cholesky_mixture_logp_entry),
    ("cholesky", "grad"): (_cholesky_grad_c, _cholesky_mixture_logp_grad_entry),
    ("cholesky", "logp_and_grad"): (_cholesky_logp_and_grad_c, _cholesky_mixture_logp_and_grad_entry),
    ("diagonal", "logp"): (_diagonal_logp_c, _diagonal_mixture_logp_entry),
    ("diagonal", "grad"): (_diagonal_grad_c, _diagonal_mixture_logp_grad_entry),
    ("diagonal", "logp_and_grad"): (_diagonal_logp_and_grad_c, _diagonal_mixture_logp_and_grad_entry),
}
_IN_PLACE: dict[tuple[str, str], CFunc] = {}  # the compiled C functions whose addresses are in their cells
_PLACING = threading.Lock()


def entry_point(structure: str, kind: str):
    """The numba entry of one fused kernel, with its C function compiled (or loaded from cache) and in place.

    Only the C functions a model uses are compiled: each costs several seconds the first time (a full
    compile of the kernels it wraps), a fraction of a second from the cache afterwards.

    Parameters
    ----------
    structure : {"cholesky", "diagonal"}
        The scale parametrisation of the Op (``MixtureLogp.structure``).
    kind : {"logp", "grad", "logp_and_grad"}
        Which of the three kernels.
    """
    key = (structure, kind)
    with _PLACING:
        if key not in _IN_PLACE:
            callback = compile_callback(uncompiled_kernel_cfunc(_ENTRIES[key][0], _SIGNATURES[kind]))
            _IN_PLACE[key] = callback  # kept alive: the cell holds its address
            _ADDRESSES[key].cell.value = callback.address
    return _ENTRIES[key][1]


def _after_fork_in_child() -> None:
    # A lock held by another thread of the parent at the fork would never be released in the child.
    global _PLACING
    _PLACING = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
