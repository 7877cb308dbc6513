"""Run NUTS on a GMM model with the chosen back end, every chain from its own jittered EM start."""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr

from bayes_gmm.inference._backends import single_threaded_blas
from bayes_gmm.inference._nutpie_compile import compile_nutpie_model

#: A function of a random generator that returns one chain's start point (constrained values by name).
StartSampler = Callable[[np.random.Generator], dict[str, np.ndarray]]


def run_nuts(
    model: pm.Model,
    start_sampler: StartSampler,
    *,
    backend: str,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    target_accept: float,
    random_seed: int,
    progressbar: bool,
):
    """Sample `model` by NUTS; returns a DataTree with (at least) posterior and sample_stats.

    Every chain starts at ``start_sampler(rng)``, with a generator seeded from `random_seed` and the chain
    (nutpie: the seed it derives for each chain), so the same seed gives the same starts with a back end. The pointwise log-likelihood is left out
    here and computed afterwards for every back end alike. ``attrs["compile_time_s"]`` holds the time
    taken to compile the model (nutpie), before any sampling.
    """
    with single_threaded_blas(), warnings.catch_warnings():
        # Our own diagnostics run after relabelling; PyMC's, before it, would warn about label switches.
        warnings.filterwarnings("ignore", message=".*rhat.*|.*effective sample size.*", category=UserWarning)
        if backend == "nutpie":
            return _run_nutpie(
                model, start_sampler, draws, tune, chains, cores, target_accept, random_seed, progressbar
            )
        starts = [start_sampler(np.random.default_rng([random_seed, chain])) for chain in range(chains)]
        if backend == "numpyro":
            # No jitter on top of our EM start; chains vectorised in one process (JAX sees one CPU device).
            kwargs = {"nuts_sampler_kwargs": {"jitter": False, "chain_method": "vectorized"}}
        else:
            kwargs = {"init": "adapt_diag", "cores": cores}  # "jitter+adapt_diag" would undo the EM start
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            initvals=starts,
            target_accept=target_accept,
            random_seed=random_seed,
            progressbar=progressbar,
            nuts_sampler=backend,
            compute_convergence_checks=False,
            model=model,
            **kwargs,
        )


def _run_nutpie(model, start_sampler, draws, tune, chains, cores, target_accept, random_seed, progressbar):
    import nutpie

    started = time.perf_counter()
    compiled = _compiled_for(model)
    # nutpie asks for one start per chain, passing each a seed of its own (derived from `seed` below), from
    # the chains' threads at once: the compiled PyTensor function is not safe to call concurrently.
    to_unconstrained = unconstrained_point_function(model)
    lock = threading.Lock()

    def chain_start(chain_seed) -> np.ndarray:
        with lock:
            return to_unconstrained(start_sampler(np.random.default_rng([random_seed, int(chain_seed)])))

    compiled = dataclasses.replace(compiled, initial_point_func=chain_start)
    compile_time = time.perf_counter() - started
    fit = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        target_accept=target_accept,
        seed=int(random_seed),
        save_warmup=False,  # as PyMC's own sampler, which discards the tuning draws
        progress_bar=progressbar,
    )
    # A reused compiled model carries the coordinates (feature names) of the model it was compiled for.
    posterior = fit.posterior.to_dataset()
    posterior = posterior.assign_coords(
        {dim: list(model.coords[dim]) for dim in posterior.dims if dim in model.coords}
    )
    if model.deterministics:
        posterior = posterior.merge(
            pm.compute_deterministics(
                posterior, model=model, progressbar=False, compile_kwargs={"mode": "FAST_COMPILE"}
            )
        )
    fit["posterior"] = xr.DataTree(posterior)
    fit.attrs["compile_time_s"] = compile_time
    return fit


#: nutpie's compiled models of this process, by model structure (see ``build_model``), most recent last.
_COMPILED: OrderedDict[tuple, object] = OrderedDict()
_MAX_COMPILED = 4  # each keeps a copy of the data it was compiled with


def _compiled_for(model: pm.Model):
    """nutpie's compiled model for `model`, reusing one compiled earlier in this process when possible.

    A compiled model is reused for a model of the same structure (``model.bayes_gmm_structure``: covariance
    type, K, D, likelihood, LKJ shape) with the values of its data containers swapped in; the data and the
    data-scaled priors are all containers, so nothing else differs. Its numba back end compiles the fused
    likelihood Op too (registered in bayes_gmm.models._fused); PyTensor caches the compiled graph across
    processes, and ``compile_nutpie_model`` the C entry points that nutpie calls.
    """
    key = getattr(model, "bayes_gmm_structure", None)
    data = {variable.name: variable.get_value() for variable in model.data_vars}
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key].with_data(**data)
    # Deterministics are computed after sampling (run_nuts): compiling them into nutpie's draw-expansion
    # function costs seconds per fit, evaluating them on the draws afterwards a few milliseconds.
    free_names = [rv.name for rv in model.free_RVs]
    compiled = compile_nutpie_model(model, var_names=free_names)
    if key is not None:
        _COMPILED[key] = compiled
        if len(_COMPILED) > _MAX_COMPILED:
            _COMPILED.popitem(last=False)
    return compiled


def unconstrained_point_function(model: pm.Model) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Map a point (constrained values of the free variables by name) to the flat unconstrained vector.

    The order is that of ``model.free_RVs``, each variable's transformed value raveled: the layout nutpie
    (and PyMC's ``DictToArrayBijection``) uses. One small function is compiled per model.
    """
    variables = list(model.free_RVs)
    inputs = [rv.type() for rv in variables]
    outputs = []
    for rv, value in zip(variables, inputs, strict=True):
        transform = model.rvs_to_transforms.get(rv)
        unconstrained = transform.forward(value, *rv.owner.inputs) if transform is not None else value
        outputs.append(pt.as_tensor(unconstrained).ravel())
    function = pytensor.function(
        inputs, pt.concatenate(outputs), mode="FAST_COMPILE", on_unused_input="ignore"
    )
    names = [rv.name for rv in variables]
    # A copy: PyTensor reuses a function's output buffer on the next call.
    return lambda point: np.array(function(*(np.asarray(point[name], dtype=float) for name in names)))
