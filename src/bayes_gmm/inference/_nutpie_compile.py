"""nutpie's compiled model of a GMM: the fused model kernel, compiled once for every K, D and data set.

nutpie samples any model that gives it two C functions (the log-density with its gradient, and the
expansion of a draw into what the trace stores) and a pointer it hands back to them. Here both are the
shape-generic C entry points of :mod:`bayes_gmm.models._model_kernel`, compiled once and cached on disk,
and the pointer is a header naming the covariance structure, K, D, the data and the prior's
hyper-parameters, all read from the model that :func:`bayes_gmm.models.build_model` built (its data
containers). No PyTensor graph is compiled: a new number of components or features, a new covariance type
or new data costs nothing to compile.

The trace holds the unconstrained points; :func:`posterior_from_unconstrained` turns them into the model's
variables afterwards, all draws at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayes_gmm.inference._backends import resolve_backend
from bayes_gmm.models._builder import CENTER, DATA, PRIOR_DATA, SAMPLE_WEIGHT
from bayes_gmm.models._lkj import lkj_log_normalizer
from bayes_gmm.models._model_kernel import (
    COVARIANCE_CODES,
    hyper_parameters,
    model_callbacks,
    model_header,
    n_unconstrained,
    start_compiling,
)
from bayes_gmm.models._priors import GMMPriors
from bayes_gmm.models._unconstrained import from_unconstrained

#: The one variable of nutpie's trace: the unconstrained point of every draw.
UNCONSTRAINED = "unconstrained_point"
UNCONSTRAINED_DIM = "unconstrained_parameter"


def model_structure(model: pm.Model) -> tuple[str, int, int]:
    """(covariance_type, K, D) of a model built by :func:`bayes_gmm.models.build_model`."""
    structure = getattr(model, "bayes_gmm_structure", None)
    if structure is None:
        raise TypeError("nutpie runs models built by bayes_gmm.models.build_model only.")
    covariance_type, n_components, n_features, likelihood, *_ = structure
    if likelihood != "fused":
        raise ValueError(f"nutpie runs the fused likelihood; this model has likelihood={likelihood!r}.")
    return covariance_type, n_components, n_features


def prepare_nutpie(backend: str = "auto", covariance_types=None) -> None:
    """Get nutpie's model kernel ready while the caller does other work; returns at once.

    The kernel is loaded from numba's cache, or, the first time after an install, compiled in another
    process, which :func:`compile_nutpie_model` then waits for. :func:`bayes_gmm.inference.fit_gmm` calls
    this before its EM start; call it earlier still when there is other work before a fit (reading data,
    an EM fit of one's own). Does nothing unless `backend` is (or "auto" resolves to) nutpie.

    Parameters
    ----------
    backend : str, default "auto"
        The NUTS back end the fit will use, as ``fit_gmm(backend=...)`` takes it.
    covariance_types : str or iterable of str, optional
        The covariance types the fits will use; only their kernels are compiled ("full" and "tied" share
        one, the diagonal types another). Default: every type's.
    """
    if resolve_backend(backend) == "nutpie":
        start_compiling([covariance_types] if isinstance(covariance_types, str) else covariance_types)


def kernel_arrays(model: pm.Model) -> dict[str, np.ndarray]:
    """What the model kernel reads of `model` (built by :func:`bayes_gmm.models.build_model`), read-only.

    ``data`` (the centred data, transposed: D x N), ``weights`` (one per row; empty for an unweighted
    model), ``hyper`` (:func:`~bayes_gmm.models._model_kernel.hyper_parameters`) and ``header``, which
    points into the other three: keep the dict alive while the header is in use.
    """
    covariance_type, n_components, n_features = model_structure(model)
    values = {name: np.asarray(model[name].get_value(), dtype=float) for name in PRIOR_DATA.values()}
    priors = GMMPriors(
        **{field: values[name] for field, name in PRIOR_DATA.items()}, lkj_eta=model.bayes_gmm_structure[4]
    )
    center = np.asarray(model[CENTER].get_value(), dtype=float)
    arrays = {
        "data": np.ascontiguousarray((np.asarray(model[DATA].get_value(), dtype=float) - center).T),
        "weights": (
            np.ascontiguousarray(model[SAMPLE_WEIGHT].get_value(), dtype=float)
            if SAMPLE_WEIGHT in model.named_vars
            else np.empty(0)
        ),
        "hyper": hyper_parameters(priors, lkj_log_normalizer(priors.lkj_eta, n_features), center),
    }
    code = COVARIANCE_CODES[covariance_type]
    arrays["header"] = model_header(code, n_components, arrays["data"], arrays["weights"], arrays["hyper"])
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def compile_nutpie_model(model: pm.Model, initial_point_func):
    """nutpie's compiled model of `model` (built by :func:`bayes_gmm.models.build_model`).

    Parameters
    ----------
    model : pymc.Model
        The model; its data containers give the data, the weights and the prior's hyper-parameters.
    initial_point_func : callable
        ``seed -> flat unconstrained start point``, called by nutpie once per chain.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        Sampled by ``nutpie.sample``; its trace holds :data:`UNCONSTRAINED`.
    """
    from nutpie.compile_pymc import CompiledPyMCModel

    covariance_type, n_components, n_features = model_structure(model)
    code = COVARIANCE_CODES[covariance_type]
    arrays = kernel_arrays(model)
    logp_callback, expand_callback = model_callbacks(covariance_type)
    n_dim = n_unconstrained(code, n_components, n_features)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims={UNCONSTRAINED: (UNCONSTRAINED_DIM,)},
        _coords={UNCONSTRAINED_DIM: pd.RangeIndex(n_dim)},
        _shapes={UNCONSTRAINED: (n_dim,)},
        compiled_logp_func=logp_callback,
        compiled_expand_func=expand_callback,
        initial_point_func=initial_point_func,
        shared_data=arrays,  # kept alive with the model: the header points into them
        shared_var_keys={},
        user_data=arrays["header"],
        n_expanded=n_dim,
        shape_info=([UNCONSTRAINED], [slice(0, n_dim)], [(n_dim,)]),
        logp_func=None,
        expand_func=None,
        reparameterized_names=[],
    )


def posterior_from_unconstrained(points: xr.DataArray, model: pm.Model) -> xr.Dataset:
    """The model's variables (free ones and ``covariances``) from the unconstrained draws of nutpie's trace.

    Parameters
    ----------
    points : xarray.DataArray of dims (chain, draw, unconstrained_parameter)
    model : pymc.Model
        The model sampled; it gives dimension names and coordinates.
    """
    covariance_type, n_components, n_features = model_structure(model)
    values = from_unconstrained(
        points.transpose("chain", "draw", UNCONSTRAINED_DIM).to_numpy(),
        covariance_type,
        n_components,
        n_features,
    )
    dims = model.named_vars_to_dims
    coords = {"chain": points["chain"].to_numpy(), "draw": points["draw"].to_numpy()}
    variables = {}
    for name, value in values.items():
        variable_dims = tuple(dims.get(name, ()))
        coords |= {dim: list(model.coords[dim]) for dim in variable_dims}
        variables[name] = (("chain", "draw", *variable_dims), value)
    return xr.Dataset(variables, coords=coords)
