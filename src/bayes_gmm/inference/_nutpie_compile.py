"""nutpie's compiled PyMC model, with its two C entry points cached on disk across processes.

``nutpie.compile_pymc_model`` wraps PyTensor's compiled log-density-and-gradient function and its
draw-expansion function in two numba C callbacks. PyTensor caches the two functions on disk, but nutpie's
callbacks close over the process's data and are compiled anew in every process, and numba compiles the
whole model function into each of them again: about 6 of the 8.5 s that compiling the README's demo model
took in a warm process, every fit. Here the two callbacks are generated as source whose only inputs are
the C arguments (the data are read through nutpie's ``user_data`` record, as nutpie's own callbacks do),
and numba caches them in PyTensor's cache under a key made of PyTensor's keys for the two functions and
the callbacks' source: a later process loads them in a fraction of a second.

Everything else is nutpie's: the functions, the record layout of the data (so ``with_data`` swaps data
without recompiling), the compiled-model class and the sampler.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import warnings
from pathlib import Path

import numba
import numpy as np
import pymc as pm
import pytensor
from numba.core.ccallback import CFunc
from numba.core.sigutils import normalize_signature

from bayes_gmm._numba_cache import compile_callback
from bayes_gmm.models._fused_entry import kernels_compiled_aside


def _installed_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # nutpie is optional for the other back ends
        return "none"


#: What makes a cached callback stale besides its source and the functions it calls: this module (its
#: name, templates and globals) and the libraries that build and compile it.
_VERSIONS = (
    f"{__name__} {hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}; numba {numba.__version__}; "
    f"pytensor {pytensor.__version__}; nutpie {_installed_version('nutpie')}"
)

_LOGP_SIGNATURE = numba.types.int64(
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)
_EXPAND_SIGNATURE = numba.types.int64(
    numba.types.uint64,
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)

# nutpie's return codes: 0 ok, -1 wrong dimension, 1 error, 3 non-finite gradient, 4 non-finite logp.
_LOGP_SOURCE = """
def bayes_gmm_logp_entry(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        x = carray(x_, ({n_dim},))
        out = carray(out_, ({n_dim},))
        logp = carray(logp_, ())
        shared = carray(user_data_, (), record_dtype)["shared"]
{shared_arrays}
        logp_value, grad = inner(x{shared_arguments})
        logp[()] = logp_value
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_value):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND_SOURCE = """
def bayes_gmm_expand_entry(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        x = carray(x_, ({n_dim},))
        out = carray(out_, ({n_expanded},))
        shared = carray(user_data_, (), record_dtype)["shared"]
{shared_arrays}
        (values,) = inner(x{shared_arguments})
        out[...] = values
    except Exception:
        return -2
    return 0
"""

_SHARED_ARRAY = (
    "        {name} = carray(address_as_void_pointer(shared['data']['{key}'][()]), "
    "int(shared['size']['{key}'][()]), {dtype}).reshape(({shape}))"
)


def compile_nutpie_model(model: pm.Model, var_names: list[str]):
    """``nutpie.compile_pymc_model(model, jitter_rvs=set(), var_names=var_names)``, its callbacks cached.

    Parameters
    ----------
    model : pymc.Model
        The model; its shared variables (``pm.Data``) become nutpie's swappable data.
    var_names : list of str
        The variables stored in the trace.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        What nutpie's own compile returns, sampled by ``nutpie.sample``.
    """
    try:  # nutpie's internals, pinned to the nutpie releases tested (pyproject.toml)
        from nutpie.compile_pymc import (
            CompiledPyMCModel,
            _make_functions,
            _prepare_dims_and_coords,
            _wrap_with_lock,
            make_user_data,
        )
    except ImportError:  # another nutpie: its own compile, the entry points compiled in every process
        import nutpie

        return nutpie.compile_pymc_model(model, jitter_rvs=set(), var_names=var_names)
    from pymc.initial_point import make_initial_point_fn

    # Chains ask for start points from their threads at once; the PyTensor function is not thread-safe.
    initial_point_fn = _wrap_with_lock(
        make_initial_point_fn(model=model, jitter_rvs=set(), return_transformed=True)
    )
    # The first time, the fused likelihood kernels compile in another process while this one compiles the
    # model graph that calls them (both are seconds).
    with kernels_compiled_aside():
        n_dim, n_expanded, logp_fn, expand_fn, initial_point, shape_info, reparameterized = _make_functions(
            model,
            mode="NUMBA",
            compute_grad=True,
            join_expanded=True,
            pymc_initial_point_fn=initial_point_fn,
            var_names=var_names,
        )
        shared_vars = list(dict.fromkeys([*logp_fn.get_shared(), *expand_fn.get_shared()]))
        # Fixed keys (nutpie draws random ones): the record layout is part of the cached callbacks' source.
        shared_var_keys = {var: f"shared_{index}" for index, var in enumerate(shared_vars)}
        shared_data = {}
        for var, key in shared_var_keys.items():
            shared_data[key] = np.array(var.get_value(), order="C", copy=True)
            shared_data[key].flags.writeable = False
        user_data = make_user_data(shared_var_keys, shared_data)

        logp_entry = _entry(
            _LOGP_SOURCE, "bayes_gmm_logp_entry", _LOGP_SIGNATURE, logp_fn, shared_var_keys, user_data,
            n_dim=n_dim, n_expanded=n_expanded,
        )  # fmt: skip
        expand_entry = _entry(
            _EXPAND_SOURCE, "bayes_gmm_expand_entry", _EXPAND_SIGNATURE, expand_fn, shared_var_keys, user_data,
            n_dim=n_dim, n_expanded=n_expanded,
        )  # fmt: skip

    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_entry,
        compiled_expand_func=expand_entry,
        initial_point_func=initial_point,
        shared_data=shared_data,
        shared_var_keys=shared_var_keys,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_fn,
        expand_func=expand_fn,
        reparameterized_names=reparameterized,
    )


def _entry(template, name, signature, function, shared_var_keys, user_data, *, n_dim, n_expanded):
    """A numba C callback calling PyTensor's compiled `function` with the data read from `user_data`."""
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    lines, arguments = [], []
    for index, var in enumerate(function.get_shared()):
        key = shared_var_keys[var]
        shape = "".join(f"int(shared['shape']['{key}'][{axis}]), " for axis in range(var.ndim))
        lines.append(
            _SHARED_ARRAY.format(
                name=f"s{index}", key=key, dtype=f"np.{np.dtype(var.dtype).name}", shape=shape
            )
        )
        arguments.append(f", s{index}")
    source = template.format(
        n_dim=n_dim,
        n_expanded=n_expanded,
        shared_arrays="\n".join(lines),
        shared_arguments="".join(arguments),
    )
    inner = function.vm.jit_fn
    inner_key = CACHED_SRC_FUNCTIONS.get(inner.py_func)
    cache_key = None
    if inner_key is not None:
        text = "\n".join([source, str(user_data.dtype), inner_key, _VERSIONS])
        cache_key = f"bayes_gmm_{hashlib.sha256(text.encode()).hexdigest()}"
    global_env = {
        # numba rebuilds a cached function's environment from the module of this name.
        "__name__": __name__,
        "carray": numba.carray,
        "address_as_void_pointer": address_as_void_pointer,
        "np": np,
        "record_dtype": user_data.dtype,
        "inner": inner,
    }
    with warnings.catch_warnings():
        # Without a PyTensor key for `function` the callback is compiled in this process only, as nutpie's.
        warnings.filterwarnings(
            "ignore", message="Cannot cache compiled function", category=numba.NumbaWarning
        )
        python_function = compile_numba_function_src(source, name, global_env, cache_key=cache_key)
        return _compiled_callback(python_function, signature, cached=cache_key is not None)


def _compiled_callback(python_function, signature, *, cached: bool):
    """``numba.cfunc(signature, cache=cached)(python_function)``, surviving a cached entry that fails to load."""
    callback = CFunc(python_function, normalize_signature(signature), locals={}, options={})
    if cached:
        callback.enable_caching()
    return compile_callback(callback)
