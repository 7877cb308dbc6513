"""One entry point for Bayesian GMM fits: NUTS or ADVI, started from EM, relabelled, diagnosed."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import xarray as xr

from bayes_gmm._interrupt import interruptible
from bayes_gmm._validation import (
    check_choice,
    check_covariance_type,
    check_fit_data,
    check_n_components,
    check_nonnegative_float,
    check_positive_float,
    check_positive_int,
    check_sample_weight,
    checked_data,
    seed_sequence,
)
from bayes_gmm._version import __version__
from bayes_gmm.em_baseline import EMResult, fit_em
from bayes_gmm.inference._advi import ADVI_METHODS, fit_advi
from bayes_gmm.inference._advi_kernel import fit_kernel_advi
from bayes_gmm.inference._arviz import convergence_diagnostics, group_dataset, has_group, set_group
from bayes_gmm.inference._backends import resolve_advi_backend, resolve_backend
from bayes_gmm.inference._draws import fit_draws
from bayes_gmm.inference._membership import pointwise_log_likelihood
from bayes_gmm.inference._nutpie_compile import prepare_nutpie
from bayes_gmm.inference._nuts import run_nuts
from bayes_gmm.inference._relabel import apply_relabelling, find_relabelling
from bayes_gmm.inference._start import jittered_start_values
from bayes_gmm.inference._verdict import record_verdict
from bayes_gmm.models import OBSERVED, GMMPriors, build_model
from bayes_gmm.models._builder import SAMPLE_WEIGHT
from bayes_gmm.models._covariance_priors import check_bayesian_covariance_type
from bayes_gmm.models._model_kernel import start_compiling

METHODS = ("nuts", *ADVI_METHODS)
#: Variables whose R-hat and ESS are reported (the deterministic covariances cover every type).
DIAGNOSED_VARS = ("weights", "means", "covariances")
#: Above this many stored values (draws x observations) the pointwise log-likelihood is not kept by default.
MAX_LOG_LIKELIHOOD_VALUES = 50_000_000


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
    sample_weight=None,
    random_seed=None,
    progressbar: bool = False,
):
    """Fit a Bayesian Gaussian mixture by NUTS or ADVI and return an ``xarray.DataTree``.

    The model is :func:`bayes_gmm.models.build_model` (assignments marginalised out). Chains start at
    the EM solution (fitted here unless `em` is given), jittered, so they begin in the EM labelling near
    the mode. Afterwards every draw is relabelled to the EM labelling by optimal matching of whole
    components (Hungarian algorithm on the KL divergence from each drawn Gaussian, mean and covariance,
    to each EM Gaussian, plus the KL divergence of the weights), so components that share a centre are
    told apart by their spread; R-hat, ESS and divergences are computed after relabelling.

    The fit then gets one convergence verdict (``attrs["converged"]``, the same that ``select_k``, the
    figures and the command line use): NUTS converged when R-hat <= 1.01, the bulk and tail ESS are at
    least 100 per chain, no transition diverged and at most 25% of the draws needed relabelling (see
    ``bayes_gmm.inference._verdict`` for why); one chain cannot be judged and does not count as
    converged. ADVI converged when its ELBO plateaued before `advi_max_iter` (R-hat and ESS do not apply)
    and at most 25% of the draws needed relabelling. A fit that did not converge raises a
    :class:`~bayes_gmm.exceptions.ConvergenceWarning` naming each failed check.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int
    covariance_type : str, default "full"
        "full", "tied", "diag" or "spherical", or mclust's name of a model with a Bayesian prior: "VVV",
        "EEE", "VVI", "VII" (the same four), "EII", "EEI"; "E" or "V" for one feature.
    method : {"nuts", "advi", "fullrank_advi"}, default "nuts"
        NUTS (MCMC) or automatic differentiation variational inference, mean-field or full-rank.
    backend : {"auto", "nutpie", "pymc", "numpyro", "kernel"}, default "auto"
        Implementation of the method; the one that ran is in ``idata.attrs["backend"]``. NUTS: "nutpie",
        "pymc" or "numpyro"; "auto" runs the fastest installed, nutpie (see
        ``bayes_gmm.inference.AUTO_PREFERENCE``). nutpie runs one compiled kernel of the whole model that
        serves every covariance type, number of components and features and data set: it is compiled once
        after an install (seconds) and loaded from numba's cache afterwards. PyMC's own sampler and numpyro
        compile the model's graph for each model shape. ADVI: "kernel" (what "auto" runs) fits on that same
        kernel, compiling nothing per model shape; "pymc" runs PyMC's ``pm.fit``, which compiles the model's
        graph for each shape (the same objective, optimiser and stopping rule).
    draws, tune, chains : int
        NUTS draws kept per chain, tuning steps per chain (at least 1; tuning draws are discarded),
        number of chains. For ADVI, `draws` draws are taken from the fitted approximation (one chain) and
        `tune` is not used.
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
        ADVI runs Adam (``pm.adam``'s update, one draw of the approximation per step) with this learning rate until the mean loss over a 500-iteration window changes by
        less than `advi_tolerance` (relative) from the window before, or `advi_max_iter` iterations; it
        is run `advi_restarts` times from differently jittered EM starts and the highest ELBO is kept
        (one mean-field run can stop in a poor local optimum).
    minibatch_size : int, optional
        ADVI only: fit on minibatches of this many rows (for large data), drawn with replacement at each
        step, their log-likelihood scaled by n_samples / minibatch_size (as ``pm.Minibatch`` with
        ``total_size``).
    log_likelihood : bool, optional
        Store the pointwise log-likelihood (needed for WAIC/LOO). Default: yes unless it would exceed
        50 million values (draws x chains x observations), in which case a warning says so. A weighted fit
        stores none (see `sample_weight`).
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each row: its log-likelihood is multiplied by it (see
        :func:`bayes_gmm.models.build_model`), e.g. the weights of a coreset
        (:func:`bayes_gmm.inference.fit_coreset_gmm`). The EM start is weighted too, and the weights are stored as
        ``constant_data["sample_weight"]``. The pointwise log-likelihood of weighted rows is not an
        out-of-sample quantity of the data (a row of weight 1000 stands for 1000 points), so WAIC and LOO
        do not apply; `log_likelihood=True` is refused. Not with `minibatch_size`.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds EM, the start jitter, and the sampler; the same seed gives the same result.
    progressbar : bool, default False

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (relabelled), ``sample_stats``, ``log_likelihood`` (variable ``obs``, one value
        per observation), ``observed_data``; ``attrs`` with method, backend, n_components, covariance_type,
        bayes_gmm_version, relabelled_fraction, rhat_max (and rhat_max_before_relabelling), ess_bulk_min,
        ess_tail_min, n_divergences, sampling_time_s (compiling and sampling), compile_time_s (nutpie),
        for ADVI advi_converged, advi_iterations, advi_tolerance and elbo_final; and the verdict:
        ``converged`` (1 or 0: netCDF has no booleans) and ``convergence_problems`` (each failed check,
        joined by "; "; empty when converged).

    Raises
    ------
    ValueError
        Before any fitting, for bad arguments and for data on which the posterior is degenerate: too few
        (distinct) rows for the components and covariance type, a constant column, columns on scales more
        than 1e10 apart, or (``full``, ``tied``) linearly dependent columns; each message says what to do.
    KeyboardInterrupt
        On Ctrl-C (SIGINT) during the fit, once the sampler's threads or processes are stopped: never a fit
        of the chains or iterations done so far (PyMC's sampler, nutpie and ADVI would return one). Caught
        in the main thread only, where Python delivers signals; the previous SIGINT handler is put back.

    Warns
    -----
    bayes_gmm.exceptions.ConvergenceWarning
        When the fit did not converge (see above), with the same problems as ``convergence_problems``.
    UserWarning
        When columns are nearly linearly dependent or many rows repeat.
    """
    n_components = check_n_components(n_components)
    covariance_type = check_bayesian_covariance_type(check_covariance_type(covariance_type))
    method = check_choice(method, "method", METHODS)
    data = checked_data(X, min_samples=n_components)
    # Degenerate data (collinear or constant columns, extreme scales, too few points) fails here, not mid-sampling.
    check_fit_data(data, n_components, covariance_type)
    run_options = _checked_run_options(dict(locals()))
    seeds = seed_sequence(random_seed).generate_state(4)
    backend = run_options["backend"]
    if method == "nuts":
        # the first fit after an install compiles the model kernel of its covariance type meanwhile, aside
        prepare_nutpie(backend, covariance_type)
    elif backend == "kernel":
        start_compiling([covariance_type])
    weights = run_options["sample_weight"]
    em = _em_start(em, data, n_components, covariance_type, random_seed=int(seeds[1]), sample_weight=weights)
    # The fused likelihood Op runs in Python (PyMC, ADVI); JAX needs the graph.
    likelihood = "graph" if backend == "numpyro" else "fused"
    model_options = {"covariance_type": covariance_type, "priors": priors}
    model = build_model(data, n_components, likelihood=likelihood, sample_weight=weights, **model_options)

    def start_sampler(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return jittered_start_values(em, covariance_type, 1, jitter=run_options["jitter"], rng=rng)[0]

    started = time.perf_counter()
    # The samplers swallow Ctrl-C and return what they have; the fit raises KeyboardInterrupt instead.
    with interruptible():
        if method == "nuts":
            idata = run_nuts(model, start_sampler, random_seed=int(seeds[2]), **run_options["nuts"])
        else:
            rng = np.random.default_rng(seeds[0])
            starts = [start_sampler(rng) for _ in range(run_options["advi_restarts"])]
            if backend == "kernel":  # minibatches drawn from the full data
                advi_rng = np.random.default_rng(seeds[2])
                options = run_options["advi"]
                idata = fit_kernel_advi(
                    model, starts, method=method, minibatch_size=minibatch_size, rng=advi_rng, **options
                )
            else:
                fit_model = model  # the log-likelihood below is always of the full data, not one minibatch
                if minibatch_size is not None:
                    fit_model = build_model(
                        data, n_components, minibatch_size=minibatch_size, **model_options
                    )
                idata = fit_advi(
                    fit_model,
                    starts,
                    method=method,
                    random_seed=int(seeds[2]),
                    draw_seed=int(seeds[3]),
                    **run_options["advi"],
                )
    idata.attrs.update(
        method=method,
        n_components=n_components,
        covariance_type=covariance_type,
        bayes_gmm_version=__version__,
        backend=backend,
        sampling_time_s=time.perf_counter() - started,
    )
    _set_observed_data(idata, data, weights)
    _relabel_to_em(idata, em)
    _add_log_likelihood(idata, model, log_likelihood)
    _diagnose(idata)
    return idata


def _checked_run_options(a: dict) -> dict:
    """The sampler's and ADVI's options among :func:`fit_gmm`'s arguments `a`, checked (before EM runs)."""
    method = a["method"]
    if not 0 < a["target_accept"] < 1:
        raise ValueError(f"target_accept must be in (0, 1); got {a['target_accept']!r}. Use e.g. 0.9.")
    if a["minibatch_size"] is not None and method == "nuts":
        raise ValueError(
            "minibatch_size only applies to ADVI (method='advi' or 'fullrank_advi'); NUTS needs "
            "the full data. Remove minibatch_size or choose an ADVI method."
        )
    weights = check_sample_weight(a["sample_weight"], a["data"].shape[0], a["n_components"])
    if weights is not None and (a["log_likelihood"] or a["minibatch_size"] is not None):
        raise ValueError(
            "sample_weight cannot be combined with log_likelihood=True or minibatch_size: a weighted row's "
            "log-likelihood is no out-of-sample value for WAIC/LOO, and a minibatch would need its rows' "
            "weights. Leave log_likelihood and minibatch_size as None (for LOO on large data see "
            "bayes_gmm.inference.loo_subsampled)."
        )
    chains = check_positive_int(a["chains"], "chains")
    cores = min(chains, _cpu_count()) if a["cores"] is None else check_positive_int(a["cores"], "cores")
    options = {
        "sample_weight": weights,
        # An unknown or missing back end fails before EM runs.
        "backend": resolve_backend(a["backend"]) if method == "nuts" else resolve_advi_backend(a["backend"]),
        "jitter": check_nonnegative_float(a["jitter"], "jitter"),
        "nuts": {
            "draws": check_positive_int(a["draws"], "draws"),
            "tune": _checked_tune(a["tune"]) if method == "nuts" else None,  # ADVI does not tune
            "chains": chains,
            "cores": cores,
            "target_accept": a["target_accept"],
            "progressbar": a["progressbar"],
        },
    }
    options["nuts"]["backend"] = options["backend"]
    if method != "nuts":
        options["advi_restarts"] = check_positive_int(a["advi_restarts"], "advi_restarts")
        options["advi"] = {
            "draws": options["nuts"]["draws"],
            "max_iter": check_positive_int(a["advi_max_iter"], "advi_max_iter"),
            "tolerance": check_nonnegative_float(a["advi_tolerance"], "advi_tolerance"),
            "learning_rate": check_positive_float(
                a["advi_learning_rate"], "advi_learning_rate", example=" Use e.g. advi_learning_rate=0.01."
            ),
            "progressbar": a["progressbar"],
        }
    return options


def _checked_tune(tune) -> int:
    # nutpie's adaptation cannot start without tuning steps (nuts-rs panics), and without them any NUTS keeps
    # its first step size; so one rule for every back end.
    try:
        return check_positive_int(tune, "tune")
    except ValueError as exc:
        raise ValueError(
            f"{exc} NUTS adapts its step size and mass matrix in the tuning steps and cannot sample well "
            f"without them (nutpie not at all). Use e.g. tune=1000."
        ) from None


def _em_start(
    em, data, n_components: int, covariance_type: str, random_seed: int, sample_weight=None
) -> EMResult:
    """The EM fit the chains start from and draws are relabelled to: `em`, checked, or fitted here.

    With `sample_weight`, weighted EM.
    """
    if em is None:
        return fit_em(
            data,
            n_components,
            covariance_type=covariance_type,
            n_init=10,
            random_seed=random_seed,
            sample_weight=sample_weight,
        )
    if not isinstance(em, EMResult) or em.n_components != n_components or em.n_features != data.shape[1]:
        raise ValueError(
            f"em must be an EMResult with {n_components} components and {data.shape[1]} features, fitted to "
            f"this data; got {em!r:.80}. Leave em=None to fit it here."
        )
    return em


def _relabel_to_em(idata, em: EMResult) -> None:
    """Relabel every draw to the EM labelling; record the fraction relabelled and R-hat before it."""
    posterior = idata.posterior
    if posterior.sizes["chain"] > 1:
        before = convergence_diagnostics(posterior, DIAGNOSED_VARS)
        idata.attrs["rhat_max_before_relabelling"] = before["rhat_max"]
    relabelling = find_relabelling(
        posterior["means"].transpose("chain", "draw", "component", "feature").to_numpy(),
        posterior["covariances"].transpose("chain", "draw", "component", "feature", "feature_cov").to_numpy(),
        ref_means=np.asarray(em.means),
        ref_covariances=em.full_covariances(),
        weights=posterior["weights"].transpose("chain", "draw", "component").to_numpy(),
        ref_weights=np.asarray(em.weights),
    )
    set_group(idata, "posterior", apply_relabelling(group_dataset(idata, "posterior"), relabelling))
    idata.attrs["relabelled_fraction"] = relabelling.fraction_relabelled


def _diagnose(idata) -> None:
    """R-hat, ESS and divergences after relabelling, and the convergence verdict, in ``attrs``; a warning
    when the fit did not converge."""
    if has_group(idata, "sample_stats") and "diverging" in idata.sample_stats:
        idata.attrs["n_divergences"] = int(idata.sample_stats["diverging"].sum())
    if idata.posterior.sizes["chain"] > 1:
        idata.attrs.update(convergence_diagnostics(idata.posterior, DIAGNOSED_VARS))
    record_verdict(idata, stacklevel=3)


def _set_observed_data(idata, data, sample_weight=None) -> None:
    """Store the full data as ``observed_data`` (and weights as ``constant_data``), whatever the back end
    or method left there.

    nutpie leaves none, and a minibatch ADVI fit would leave one batch.
    """
    obs_id = np.arange(data.shape[0])
    observed = xr.Dataset(
        {OBSERVED: (("obs_id", "feature"), data.values)},
        coords={"obs_id": obs_id, "feature": list(data.feature_names)},
    )
    set_group(idata, "observed_data", observed)
    if sample_weight is not None:
        constant = xr.Dataset({SAMPLE_WEIGHT: ("obs_id", sample_weight)}, coords={"obs_id": obs_id})
        set_group(idata, "constant_data", constant)


def _add_log_likelihood(idata, model, requested: bool | None) -> None:
    if SAMPLE_WEIGHT in model.named_vars:  # weighted rows: no pointwise values for WAIC/LOO (see fit_gmm)
        return
    n_values = (
        idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"] * idata.observed_data.sizes["obs_id"]
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
        # The model's likelihood evaluated from the (relabelled) draws of its parameters in data units.
        draws = fit_draws(idata, func="fit_gmm", em_allowed=False)
        values = pointwise_log_likelihood(draws.X, draws.weights, draws.means, draws.covariances)
        posterior = idata.posterior
        shape = (posterior.sizes["chain"], posterior.sizes["draw"], draws.X.shape[0])
        coords = {"chain": posterior["chain"], "draw": posterior["draw"], "obs_id": draws.obs_ids}
        log_likelihood = xr.Dataset({OBSERVED: (("chain", "draw", "obs_id"), values.reshape(shape))}, coords)
        set_group(idata, "log_likelihood", log_likelihood)


def _cpu_count() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
