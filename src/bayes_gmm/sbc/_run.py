"""Running an SBC experiment: simulate from the prior, fit with nutpie, rank the truth among the draws.

One job: :func:`run_sbc` draws R truths and data sets by PyMC's prior predictive sampling, fits each data
set with nutpie (refitting with more draws when the bulk ESS is below L), and records the rank of every
test quantity's true value among L thinned posterior draws, with per-replication sampler diagnostics.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable

import numpy as np

from bayes_gmm.models import OBSERVED, build_model
from bayes_gmm.sbc._quantities import sbc_quantities
from bayes_gmm.sbc._settings import COVARIANCE_TYPES, SBCResult, SBCSettings

__all__ = ["run_sbc"]


def _free_values(dataset, index: int, names) -> dict[str, np.ndarray]:
    return {name: dataset[name].isel(chain=0, draw=index).to_numpy() for name in names}


def _rank(truth: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """Number of draws below the truth, ties (a tied covariance's repeated values) broken at random."""
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + (int(rng.integers(ties + 1)) if ties else 0)


def run_sbc(settings: SBCSettings, progress: Callable[[int, float], None] | None = None) -> SBCResult:
    """Run the SBC experiment ``settings``; ``progress(done, seconds)`` is called after each replication."""
    import pymc as pm

    s = settings
    started = time.perf_counter()
    template = np.zeros((s.n_samples, s.n_features))
    simulator = build_model(template, s.n_components, covariance_type=s.covariance_type, priors=s.priors)
    fit_priors = s.fitting_priors()
    free_names = [rv.name for rv in simulator.free_RVs]
    type_index = COVARIANCE_TYPES.index(s.covariance_type)
    seeds = np.random.SeedSequence([s.seed, type_index, s.n_components, s.n_features, s.n_samples])
    prior_seed, start_seed, tie_seed, *fit_seeds = seeds.spawn(3 + s.replications)
    pymc_logger = logging.getLogger("pymc")
    level = pymc_logger.level
    pymc_logger.setLevel(logging.WARNING)  # "Sampling: [...]" from sample_prior_predictive
    pool = None  # prior draws to start the chains from (start="prior")
    try:
        with warnings.catch_warnings():
            # The custom random generators run in Python (object mode) under PyMC's numba forward sampler.
            warnings.filterwarnings("ignore", message="Numba will use object mode", category=UserWarning)
            prior = pm.sample_prior_predictive(
                s.replications, model=simulator, random_seed=np.random.default_rng(prior_seed)
            )
            if s.start == "prior":
                start_model = build_model(
                    template, s.n_components, covariance_type=s.covariance_type, priors=fit_priors
                )
                pool = pm.sample_prior_predictive(
                    s.replications * s.chains,
                    model=start_model,
                    var_names=free_names,
                    random_seed=np.random.default_rng(start_seed),
                ).prior
    finally:
        pymc_logger.setLevel(level)
    simulated_data = prior.prior_predictive[OBSERVED].isel(chain=0).to_numpy()  # (R, N, D)
    truths = prior.prior
    tie_rng = np.random.default_rng(tie_seed)

    names = None
    ranks, min_ess, max_rhat, divergences, refits = [], [], [], [], 0
    for r in range(s.replications):
        X = simulated_data[r]
        truth = _free_values(truths, r, free_names)
        true_values = sbc_quantities(
            truth["weights"],
            truth["means"],
            truths["covariances"].isel(chain=0, draw=r).to_numpy(),
            X,
            s.covariance_type,
        )
        model = build_model(X, s.n_components, covariance_type=s.covariance_type, priors=fit_priors)
        fit_seed = int(fit_seeds[r].generate_state(1)[0])
        draws = s.draws
        for attempt in range(1 + s.low_ess_refits):
            stacked, ess, rhat, n_divergent = _fit_quantities(
                model, truth, pool, free_names, X, s, draws, fit_seed
            )
            if ess >= s.n_ranks or attempt == s.low_ess_refits:
                break
            # Talts et al.'s advice when the thinned draws would not be independent: draw more, thin more.
            refits += 1
            draws *= 4
            fit_seed += 1
        names = list(true_values)
        min_ess.append(ess)
        max_rhat.append(rhat)
        divergences.append(n_divergent)
        thin = np.round(np.linspace(0, stacked.shape[0] * stacked.shape[1] - 1, s.n_ranks)).astype(int)
        thinned = stacked.reshape(-1, len(names))[thin]
        ranks.append([_rank(true_values[name], thinned[:, q], tie_rng) for q, name in enumerate(names)])
        if progress is not None:
            progress(r + 1, time.perf_counter() - started)
    return SBCResult(
        settings=s,
        quantities=names,
        ranks=np.asarray(ranks, dtype=int),
        min_ess=np.asarray(min_ess),
        max_rhat=np.asarray(max_rhat),
        divergences=np.asarray(divergences),
        seconds=time.perf_counter() - started,
        refits=refits,
    )


def _fit_quantities(model, truth, pool, free_names, X, s: SBCSettings, draws: int, seed: int):
    """Fit `model` by nutpie; returns the quantities' draws (chains, draws, Q), their smallest bulk ESS,
    largest R-hat and the number of divergences."""
    from arviz_stats.base import array_stats

    from bayes_gmm.inference._nuts import run_nuts

    if pool is None:

        def start_sampler(rng):
            return truth
    else:

        def start_sampler(rng):
            return _free_values(pool, int(rng.integers(pool.sizes["draw"])), free_names)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = run_nuts(
            model,
            start_sampler,
            backend="nutpie",
            draws=draws,
            tune=s.tune,
            chains=s.chains,
            cores=s.cores,
            target_accept=s.target_accept,
            random_seed=seed,
            progressbar=False,
        )
    posterior = fit.posterior
    quantities = sbc_quantities(
        posterior["weights"].to_numpy(),
        posterior["means"].to_numpy(),
        posterior["covariances"].to_numpy(),
        X,
        s.covariance_type,
    )
    stacked = np.stack(list(quantities.values()), axis=-1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ess = float(np.nanmin(array_stats.ess(stacked, chain_axis=0, draw_axis=1, method="bulk")))
        rhat = float(np.nanmax(array_stats.rhat(stacked, chain_axis=0, draw_axis=1)))
    return stacked, ess, rhat, int(fit.sample_stats["diverging"].sum())
