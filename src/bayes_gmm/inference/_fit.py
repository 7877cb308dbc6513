"""One entry point for Bayesian GMM fits: NUTS or ADVI, started from EM, relabelled, diagnosed."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pymc as pm
import xarray as xr

from bayes_gmm._validation import (
    check_choice,
    check_covariance_type,
    check_data,
    check_fit_data,
    check_n_components,
    check_nonnegative_float,
    check_positive_float,
    check_positive_int,
)
from bayes_gmm._version import __version__
from bayes_gmm.em_baseline import EMResult, fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference._advi import ADVI_METHODS, run_advi
from bayes_gmm.inference._arviz import convergence_diagnostics, group_dataset, has_group, set_group
from bayes_gmm.inference._backends import resolve_backend
from bayes_gmm.inference._nuts import run_nuts
from bayes_gmm.inference._relabel import apply_relabelling, find_relabelling
from bayes_gmm.inference._start import em_full_covariances, jittered_start_values
from bayes_gmm.models import DATA, OBSERVED, GMMPriors, build_model

METHODS = ("nuts", *ADVI_METHODS)
#: Variables whose R-hat and ESS are reported (the deterministic covariances cover every type).
DIAGNOSED_VARS = ("weights", "means", "covariances")
#: Above this many stored values (draws x observations) the pointwise log-likelihood is not kept by default.
MAX_LOG_LIKELIHOOD_VALUES = 50_000_000
RHAT_THRESHOLD = 1.01
MIN_ESS_PER_CHAIN = 100


def fit_gmm(
    X,
    n_components: int,
    *,
    covariance_type: str = "full",
    method: str = "nuts",
    backend: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    target_accept: float = 0.9,
    priors: GMMPriors | None = None,
    em: EMResult | None = None,
    jitter: float = 0.05,
    advi_max_iter: int = 50_000,
    advi_tolerance: float = 1e-4,
    advi_learning_rate: float = 0.01,
    advi_restarts: int = 2,
    minibatch_size: int | None = None,
    log_likelihood: bool | None = None,
    random_seed=None,
    progressbar: bool = False,
):
    """Fit a Bayesian Gaussian mixture by NUTS or ADVI and return an ``xarray.DataTree``.

    The model is :func:`bayes_gmm.models.build_model` (assignments marginalised out). Chains start at
    the EM solution (fitted here unless `em` is given), jittered, so they begin in the EM labelling near
    the mode. Afterwards every draw is relabelled to the EM labelling by optimal matching of whole
    components (Hungarian algorithm on the KL divergence from each drawn Gaussian, mean and covariance,
    to each EM Gaussian, plus the KL divergence of the weights), so components that share a centre are
    told apart by their spread; R-hat, ESS and divergences are computed after relabelling and a
    :class:`~bayes_gmm.exceptions.ConvergenceWarning` is raised when R-hat > 1.01, the bulk or tail ESS is below 100 per chain, or any transition diverged.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    method : {"nuts", "advi", "fullrank_advi"}, default "nuts"
        NUTS (MCMC) or automatic differentiation variational inference, mean-field or full-rank.
    backend : {"auto", "nutpie", "pymc", "numpyro"}, default "auto"
        NUTS implementation; "auto" runs the fastest installed, nutpie (see
        ``bayes_gmm.inference.AUTO_PREFERENCE``). The one that ran is in ``idata.attrs["backend"]``. nutpie
        compiles the model once per process and shape (covariance type, number of components and
        features); later fits of the same shape in the same process reuse that compilation.
    draws, tune, chains : int
        NUTS draws kept per chain, tuning steps per chain, number of chains. For ADVI, `draws` draws are
        taken from the fitted approximation (one chain).
    cores : int, optional
        Worker processes for the PyMC and nutpie back ends (default: min(chains, CPU count)).
    target_accept : float, default 0.9
    priors : GMMPriors, optional
        Prior hyper-parameters (defaults are scaled to the data).
    em : EMResult, optional
        The EM fit used for the start points and as the relabelling reference; by default
        ``fit_em(X, n_components, covariance_type=covariance_type, n_init=10)``.
    jitter : float, default 0.05
        Size of the start-point perturbation (fraction of a component's standard deviation for the means;
        log-scale for weights and scales).
    advi_max_iter, advi_tolerance, advi_learning_rate, advi_restarts
        ADVI runs Adam with this learning rate until the mean loss over a 500-iteration window changes by
        less than `advi_tolerance` (relative) from the window before, or `advi_max_iter` iterations; it
        is run `advi_restarts` times from differently jittered EM starts and the highest ELBO is kept
        (one mean-field run can stop in a poor local optimum).
    minibatch_size : int, optional
        ADVI only: fit on minibatches of this many rows (for large data).
    log_likelihood : bool, optional
        Store the pointwise log-likelihood (needed for WAIC/LOO). Default: yes unless it would exceed
        50 million values (draws x chains x observations), in which case a warning says so.
    random_seed : int, optional
        Seeds EM, the start jitter, and the sampler; the same seed gives the same result.
    progressbar : bool, default False

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (relabelled), ``sample_stats``, ``log_likelihood`` (variable ``obs``, one value
        per observation), ``observed_data``; ``attrs`` with method, backend, n_components, covariance_type,
        bayes_gmm_version, relabelled_fraction, rhat_max (and rhat_max_before_relabelling), ess_bulk_min,
        ess_tail_min, n_divergences, sampling_time_s (compiling and sampling), compile_time_s (nutpie), and
        for ADVI advi_converged, advi_iterations and elbo_final.

    Raises
    ------
    ValueError
        Before any fitting, for bad arguments and for data on which the posterior is degenerate: too few
        (distinct) rows for the components and covariance type, a constant column, columns on scales more
        than 1e10 apart, or (``full``, ``tied``) linearly dependent columns; each message says what to do.

    Warns
    -----
    bayes_gmm.exceptions.ConvergenceWarning
        When NUTS diagnostics after relabelling are poor (see above), or ADVI stops at `advi_max_iter`
        before its ELBO plateaus.
    UserWarning
        When columns are nearly linearly dependent or many rows repeat.
    """
    feature_source = X
    n_components = check_n_components(n_components)
    covariance_type = check_covariance_type(covariance_type)
    method = check_choice(method, "method", METHODS)
    X = check_data(X, min_samples=n_components)
    # Degenerate data (collinear or constant columns, extreme scales, too few points) fails here, not mid-sampling.
    check_fit_data(X, n_components, covariance_type, feature_names=getattr(feature_source, "columns", None))
    draws = check_positive_int(draws, "draws")
    chains = check_positive_int(chains, "chains")
    tune = check_positive_int(tune, "tune", minimum=0)
    jitter = check_nonnegative_float(jitter, "jitter")
    if method != "nuts":
        advi_learning_rate = check_positive_float(
            advi_learning_rate, "advi_learning_rate", example=" Use e.g. advi_learning_rate=0.01."
        )
        advi_max_iter = check_positive_int(advi_max_iter, "advi_max_iter")
        advi_tolerance = check_nonnegative_float(advi_tolerance, "advi_tolerance")
        advi_restarts = check_positive_int(advi_restarts, "advi_restarts")
    if not 0 < target_accept < 1:
        raise ValueError(f"target_accept must be in (0, 1); got {target_accept!r}. Use e.g. 0.9.")
    if minibatch_size is not None and method == "nuts":
        raise ValueError(
            "minibatch_size only applies to ADVI (method='advi' or 'fullrank_advi'); NUTS needs "
            "the full data. Remove minibatch_size or choose an ADVI method."
        )
    if method == "nuts":
        backend = resolve_backend(backend)  # an unknown or missing back end fails before EM runs
    if cores is not None:
        cores = check_positive_int(cores, "cores")
    seeds = np.random.SeedSequence(random_seed).generate_state(4)
    rng = np.random.default_rng(seeds[0])
    if em is None:
        em = fit_em(X, n_components, covariance_type=covariance_type, n_init=10, random_seed=int(seeds[1]))
    elif not isinstance(em, EMResult) or em.n_components != n_components or em.n_features != X.shape[1]:
        raise ValueError(
            f"em must be an EMResult with {n_components} components and {X.shape[1]} features, fitted to "
            f"this data; got {em!r:.80}. Leave em=None to fit it here."
        )
    # The fused likelihood Op runs in Python (PyMC's sampler, ADVI) and in numba mode (nutpie); JAX needs
    # the graph.
    likelihood = "graph" if method == "nuts" and backend == "numpyro" else "fused"
    # A DataFrame keeps its column names as the feature coordinate, in every model built here.
    model_data = feature_source if hasattr(feature_source, "columns") else X
    model = build_model(
        model_data,
        n_components,
        covariance_type=covariance_type,
        priors=priors,
        likelihood=likelihood,
    )

    def start_sampler(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return jittered_start_values(em, covariance_type, 1, jitter=jitter, rng=rng)[0]

    started = time.perf_counter()
    attrs = {
        "method": method,
        "n_components": n_components,
        "covariance_type": covariance_type,
        "bayes_gmm_version": __version__,
    }
    if method == "nuts":
        cores = min(chains, _cpu_count()) if cores is None else cores
        idata = run_nuts(
            model,
            start_sampler,
            backend=backend,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            target_accept=target_accept,
            random_seed=int(seeds[2]),
            progressbar=progressbar,
        )
    else:
        backend = "pymc"
        fit_model = (
            model
            if minibatch_size is None
            else build_model(
                model_data,
                n_components,
                covariance_type=covariance_type,
                priors=priors,
                minibatch_size=minibatch_size,
            )
        )
        best, _ = run_advi(
            fit_model,
            [start_sampler(rng) for _ in range(advi_restarts)],
            method=method,
            max_iter=advi_max_iter,
            tolerance=advi_tolerance,
            learning_rate=advi_learning_rate,
            random_seed=int(seeds[2]),
            progressbar=progressbar,
        )
        idata = best.approximation.sample(draws, random_seed=int(seeds[3]))
        set_group(idata, "sample_stats", xr.Dataset({"elbo": ("advi_iteration", -best.loss_history)}))
        attrs.update(
            advi_converged=int(best.converged),
            advi_iterations=len(best.loss_history),
            elbo_final=best.final_elbo,
        )
        if not best.converged:
            warnings.warn(
                f"ADVI stopped at advi_max_iter={len(best.loss_history)} iterations before its ELBO "
                f"plateaued (relative change < advi_tolerance={advi_tolerance}); the approximation may be "
                f"far from the optimum. Raise advi_max_iter or advi_learning_rate, or use NUTS.",
                ConvergenceWarning,
                stacklevel=2,
            )
    attrs["backend"] = backend
    attrs["sampling_time_s"] = time.perf_counter() - started
    _set_observed_data(idata, model)

    before = (
        convergence_diagnostics(idata.posterior, DIAGNOSED_VARS)
        if idata.posterior.sizes["chain"] > 1
        else None
    )
    posterior = idata.posterior
    relabelling = find_relabelling(
        posterior["means"].transpose("chain", "draw", "component", "feature").to_numpy(),
        posterior["covariances"].transpose("chain", "draw", "component", "feature", "feature_cov").to_numpy(),
        ref_means=np.asarray(em.means),
        ref_covariances=em_full_covariances(em),
        weights=posterior["weights"].transpose("chain", "draw", "component").to_numpy(),
        ref_weights=np.asarray(em.weights),
    )
    set_group(idata, "posterior", apply_relabelling(group_dataset(idata, "posterior"), relabelling))
    attrs["relabelled_fraction"] = relabelling.fraction_relabelled

    _add_log_likelihood(idata, model, log_likelihood)
    if has_group(idata, "sample_stats") and "diverging" in idata.sample_stats:
        attrs["n_divergences"] = int(idata.sample_stats["diverging"].sum())
    if before is not None:
        after = convergence_diagnostics(idata.posterior, DIAGNOSED_VARS)
        attrs["rhat_max_before_relabelling"] = before["rhat_max"]
        attrs.update(after)
        _warn_if_poor(attrs, chains)
    idata.attrs.update(attrs)
    return idata


def _set_observed_data(idata, model) -> None:
    """Store the full data as ``observed_data``, whatever the back end or method left there.

    nutpie leaves none, and a minibatch ADVI fit would leave one batch.
    """
    observed = xr.Dataset(
        {OBSERVED: (("obs_id", "feature"), model[DATA].get_value())},
        coords={"obs_id": np.asarray(model.coords["obs_id"]), "feature": list(model.coords["feature"])},
    )
    set_group(idata, "observed_data", observed)


def _add_log_likelihood(idata, model, requested: bool | None) -> None:
    n_values = (
        idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"] * model[OBSERVED].shape[0].eval()
    )
    if requested is None:
        requested = n_values <= MAX_LOG_LIKELIHOOD_VALUES
        if not requested:
            warnings.warn(
                f"the pointwise log-likelihood would hold {n_values:,} values, so it was not stored; WAIC and "
                f"LOO need it. Pass log_likelihood=True to store it anyway, or take fewer draws.",
                UserWarning,
                stacklevel=3,
            )
    if requested:
        pm.compute_log_likelihood(idata, var_names=[OBSERVED], model=model, progressbar=False)


def _warn_if_poor(attrs: dict, chains: int) -> None:
    problems = []
    if not attrs["rhat_max"] <= RHAT_THRESHOLD:
        problems.append(f"max R-hat {attrs['rhat_max']:.3f} > {RHAT_THRESHOLD}")
    min_ess = MIN_ESS_PER_CHAIN * chains
    if not min(attrs["ess_bulk_min"], attrs["ess_tail_min"]) >= min_ess:
        problems.append(f"min ESS {min(attrs['ess_bulk_min'], attrs['ess_tail_min']):.0f} < {min_ess}")
    if attrs.get("n_divergences", 0) > 0:
        problems.append(f"{attrs['n_divergences']} divergent transitions")
    if problems:
        warnings.warn(
            "NUTS diagnostics after relabelling are poor (" + "; ".join(problems) + "). Run more tune/draws, "
            "raise target_accept (e.g. 0.95), or use fewer components: an empty or duplicated component "
            "is often the cause.",
            ConvergenceWarning,
            stacklevel=3,
        )


def _cpu_count() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
