"""Run NUTS on a GMM model with the chosen back end, starting every chain where it is told to."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pymc as pm

from bayes_gmm.inference._backends import single_threaded_blas


def run_nuts(
    model: pm.Model,
    starts: list[dict[str, np.ndarray]],
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
    """Sample `model` by NUTS; returns InferenceData with (at least) posterior and sample_stats.

    The pointwise log-likelihood is left out here and computed afterwards for every back end alike
    (nutpie ignores PyMC's ``idata_kwargs``). With nutpie, ``idata.attrs["compile_time_s"]`` holds the
    time taken to compile the model, before any sampling.
    """
    with single_threaded_blas(), warnings.catch_warnings():
        # Our own diagnostics run after relabelling; PyMC's, before it, would warn about label switches.
        warnings.filterwarnings("ignore", message=".*rhat.*|.*effective sample size.*", category=UserWarning)
        if backend == "nutpie":
            return _run_nutpie(
                model, starts[0], draws, tune, chains, cores, target_accept, random_seed, progressbar
            )
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
            idata_kwargs={"log_likelihood": False},
            compute_convergence_checks=False,
            model=model,
            **kwargs,
        )


def _run_nutpie(model, start, draws, tune, chains, cores, target_accept, random_seed, progressbar):
    import nutpie

    started = time.perf_counter()
    # nutpie takes one start point for all chains (no per-chain initvals) and jitters none of it here.
    # Its numba back end compiles the fused likelihood Op too (registered in bayes_gmm.models._fused).
    compiled = nutpie.compile_pymc_model(model, initial_points=start, jitter_rvs=set())
    compile_time = time.perf_counter() - started
    idata = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        target_accept=target_accept,
        seed=int(random_seed),
        progress_bar=progressbar,
    )
    idata.attrs["compile_time_s"] = compile_time
    return idata
