"""Run NUTS on a GMM model with the chosen back end, every chain from its own jittered EM start."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import pymc as pm
import xarray as xr

from bayes_gmm.inference._backends import single_threaded_blas
from bayes_gmm.inference._nutpie_compile import (
    UNCONSTRAINED,
    compile_nutpie_model,
    model_structure,
    posterior_from_unconstrained,
)
from bayes_gmm.models._unconstrained import to_unconstrained

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

    covariance_type = model_structure(model)[0]

    def chain_start(chain_seed) -> np.ndarray:
        # nutpie asks for one start per chain, passing each a seed of its own (derived from `seed` below).
        rng = np.random.default_rng([random_seed, int(chain_seed)])
        return to_unconstrained(start_sampler(rng), covariance_type)

    started = time.perf_counter()
    compiled = compile_nutpie_model(model, initial_point_func=chain_start)
    compile_time = time.perf_counter() - started
    try:
        sampler = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            target_accept=target_accept,
            seed=int(random_seed),
            save_warmup=False,  # as PyMC's own sampler, which discards the tuning draws
            progress_bar=progressbar,
            blocking=False,
        )
        # Blocking, nutpie answers Ctrl-C by returning the trace so far (its unfinished draws NaN); here the
        # sampling threads are stopped and the interrupt goes on.
        try:
            fit = sampler.wait()
        except KeyboardInterrupt:
            _stop(sampler)
            raise
    except (KeyboardInterrupt, SystemExit, Exception):
        raise
    except BaseException as exc:  # a Rust panic (pyo3's PanicException): an error, not a way to exit
        raise RuntimeError(f"nutpie's sampler failed: {exc}") from exc
    posterior = posterior_from_unconstrained(fit.posterior[UNCONSTRAINED], model)
    posterior.attrs = dict(fit.posterior.attrs)
    fit["posterior"] = xr.DataTree(posterior)
    fit.attrs["compile_time_s"] = compile_time
    return fit


def _stop(sampler) -> None:
    """Stop nutpie's sampling threads (after Ctrl-C). Had the sampler itself failed meanwhile, cancel()
    would panic ("Poisoned sampler state mutex"): the interrupt is what to report (a new Ctrl-C too)."""
    try:
        sampler.cancel()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # the error being raised is the one to report
        pass
