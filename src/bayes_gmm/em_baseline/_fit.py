"""The EM loop, written once for every covariance type, with restarts."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from bayes_gmm._validation import (
    check_choice,
    check_covariance_type,
    check_data,
    check_n_components,
    check_nonnegative_float,
    check_positive_int,
    warn_if_regularisation_dominates,
)
from bayes_gmm.covariance import get_structure, log_responsibilities
from bayes_gmm.covariance._kernels import fused_estep_statistics
from bayes_gmm.em_baseline._init import INIT_METHODS, initial_responsibilities
from bayes_gmm.em_baseline._mstep import parameters_from_responsibilities, parameters_from_statistics
from bayes_gmm.em_baseline._result import EMResult
from bayes_gmm.exceptions import COLLAPSE_HINT, ConvergenceWarning, IllConditionedCovarianceError

#: With ``init="kmeans"``, this many candidate starts are screened per start that runs to convergence ...
SCREENED_PER_RUN = 4
#: ... each by at most this many EM updates (the emEM strategy of Biernacki, Celeux & Govaert 2003).
SCREENING_ITERATIONS = 10


def fit_em(
    X,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str = "kmeans",
    n_init: int = 5,
    max_iter: int = 1000,
    tol: float = 1e-6,
    reg_covar: float = 1e-6,
    initial_params=None,
    initial_resp=None,
    random_seed=None,
) -> EMResult:
    """Fit a Gaussian mixture by maximum likelihood with expectation-maximisation.

    Each EM iteration is one fused pass over the data (compiled with numba, parallel over chunks of
    samples) that computes the responsibilities and the M-step's sufficient statistics together.

    EM ends at a local maximum that depends on its start: `n_init` starts run to convergence and the best
    is returned. The default starts are chosen to differ (see Notes).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data; NumPy arrays, nested lists and pandas DataFrames are accepted.
    n_components : int
        Number of mixture components K.
    covariance_type : str, default "full"
        "full": one unrestricted covariance per component; "tied": one covariance shared by all;
        "diag": per-component diagonal covariances; "spherical": one variance per component. Or any of
        mclust's 14 models by name ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE",
        "EEV", "VEV", "EVV", "VVV"; "E" and "V" for one feature), of which VVV, EEE, VVI and VII are
        full, tied, diag and spherical (see :mod:`bayes_gmm.covariance`).
    init : {"kmeans", "kmeans++", "random"}, default "kmeans"
        How the starts are made. "kmeans": one k-means start plus screened k-means++ starts (see
        Notes). "kmeans++": hard assignments to the nearest k-means++ seed. "random": random
        responsibilities.
    n_init : int, default 5
        Number of starts run to convergence; the fit with the highest final log-likelihood (collapsed
        fits last, see Notes) is returned. With ``init="kmeans"``, ``4 * n_init - 1`` further starts are
        screened to choose ``n_init - 1`` of them.
    max_iter : int, default 1000
        Maximum number of EM updates per start.
    tol : float, default 1e-6
        Convergence threshold on the change of the mean log-likelihood per sample between iterations.
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance, keeping a collapsing component positive definite.
    initial_params : EMResult or mapping, optional
        Start (warm start) from these parameters: an earlier :class:`EMResult`, or a mapping with keys
        ``weights``, ``means`` and ``covariances`` in the shapes `covariance_type` uses. Needs ``n_init=1``.
    initial_resp : array-like of shape (n_samples, n_components), optional
        Start from these responsibilities (rows are normalised to sum to one). Needs ``n_init=1``.
    random_seed : int, numpy.random.Generator or None
        Seed for the starts; the same seed gives the same fit. Start ``i`` draws from the ``i``-th
        generator spawned from it, so the k-means start (the first) is the same for every `n_init`.

    Returns
    -------
    EMResult

    Raises
    ------
    bayes_gmm.exceptions.IllConditionedCovarianceError
        If every start ends with a covariance that is not positive definite.

    Warns
    -----
    bayes_gmm.exceptions.ConvergenceWarning
        If the best start did not converge within `max_iter`.

    Notes
    -----
    Restarts. With the default ``init="kmeans"`` the starts differ by design (the "emEM" strategy of
    [1]_). The first is Lloyd's k-means from k-means++ seeds, run to convergence as before. Then
    ``4 * n_init - 1`` candidate starts, each the partition of the data to the nearest of a fresh
    k-means++ seeding, are screened by at most 10 EM updates each, and the ``n_init - 1`` candidates with
    the highest log-likelihood after screening continue to convergence (their screening updates count
    towards `max_iter` and appear in the log-likelihood history). Lloyd's k-means from different seeds
    mostly ends in the same partition, so plain k-means restarts would all find the same maximum; the
    k-means++ starts are diverse, and the screening spends the long runs on the promising ones. The result
    is never worse than the k-means start alone (``n_init=1``, which runs only that start; the exception
    is a collapsed k-means fit, below). ``init="kmeans++"`` and ``init="random"`` run each of their
    `n_init` starts to convergence, without screening.

    Collapsed components. A fit in which some component's covariance is, in some direction, at most
    ``2 * reg_covar`` (the component sits on a lower-dimensional set of points, such as repeated values,
    and the regularisation rather than the data sets its spread) has a spuriously high likelihood. When
    choosing between starts, such fits rank below every fit without a collapsed component; they are
    returned only when every start collapses (data with duplicated points, say). This applies to the
    screening and to the final choice.

    References
    ----------
    .. [1] C. Biernacki, G. Celeux and G. Govaert (2003), "Choosing starting values for the EM algorithm
       for getting the highest likelihood in multivariate Gaussian mixture models", *Computational
       Statistics & Data Analysis* 41, 561-575.
    """
    n_components = check_n_components(n_components)
    covariance_type = check_covariance_type(covariance_type)
    X = check_data(X, min_samples=n_components)
    get_structure(covariance_type).check_features(X.shape[1])
    check_choice(init, "init", INIT_METHODS)
    n_init = check_positive_int(n_init, "n_init")
    max_iter = check_positive_int(max_iter, "max_iter", minimum=0)
    tol = check_nonnegative_float(tol, "tol")
    reg_covar = check_nonnegative_float(reg_covar, "reg_covar")
    warn_if_regularisation_dominates(X, reg_covar)
    if initial_params is not None and initial_resp is not None:
        raise ValueError("Pass at most one of initial_params and initial_resp; got both.")
    warm_start = initial_params is not None or initial_resp is not None
    if warm_start and n_init != 1:
        raise ValueError(
            f"n_init must be 1 when initial_params or initial_resp is given (every start would be the same); "
            f"got n_init={n_init}. Pass n_init=1."
        )
    if initial_params is not None:
        start_params = [_check_initial_params(initial_params, covariance_type, n_components, X.shape[1])]
    elif initial_resp is not None:
        resp = _check_initial_resp(initial_resp, X.shape[0], n_components)
        start_params = [parameters_from_responsibilities(X, resp, reg_covar, covariance_type)]
    else:
        screened = init == "kmeans" and n_init > 1
        rngs = _spawn_generators(random_seed, SCREENED_PER_RUN * n_init if screened else n_init)
        kinds = [init] + ["kmeans++" if screened else init] * (len(rngs) - 1)
        start_params = (
            parameters_from_responsibilities(
                X, initial_responsibilities(X, n_components, kind, rng), reg_covar, covariance_type
            )
            for kind, rng in zip(kinds, rngs, strict=True)
        )

    best, failures = None, []
    n_starts = 1 if warm_start else len(rngs)
    run = {"covariance_type": covariance_type, "tol": tol, "reg_covar": reg_covar}
    # The loop's only BLAS calls are on K tiny D x D matrices; a multi-threaded BLAS left spinning after
    # each of them starves numba's worker threads (measured: 100x slower per iteration on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        if warm_start or not screened:
            runs = ((params, max_iter) for params in start_params)
        else:
            runs = _screened_starts(X, start_params, n_init, max_iter, run, failures)
        for params, budget in runs:
            try:
                result = _run_em(X, *params, max_iter=budget, **run)
            except IllConditionedCovarianceError as exc:
                failures.append(exc)
                continue
            if isinstance(params, _Screened):
                result = params.continued_by(result)
            if best is None or _rank(result, reg_covar) > _rank(best, reg_covar):
                best = result
    if best is None:
        raise IllConditionedCovarianceError(f"EM failed on all {len(failures)} start(s): {failures[0]}")
    if failures:
        warnings.warn(
            f"{len(failures)} of {n_starts} EM starts failed with a "
            f"collapsed component and were skipped. {failures[0]}",
            ConvergenceWarning,
            stacklevel=2,
        )
    if not best.converged and max_iter > 0:
        warnings.warn(
            f"EM did not converge in max_iter={max_iter} iterations (tol={tol}). Increase max_iter or tol, "
            f"or check the data's scale.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return best


def _collapsed(covariances, covariance_type, reg_covar) -> bool:
    """Whether some component's covariance is at most ``2 * reg_covar`` in some direction."""
    return get_structure(covariance_type).smallest_variance(covariances) <= 2.0 * reg_covar


def _rank(result, reg_covar):
    # Fits without a collapsed component first, then by log-likelihood.
    return (not _collapsed(result.covariances, result.covariance_type, reg_covar), result.log_likelihood)


@dataclasses.dataclass(frozen=True)
class _Screened:
    """A screened start: its parameters after screening, and the screening run's history."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    history: np.ndarray
    n_iter: int
    converged: bool

    def __iter__(self):  # unpacks as (weights, means, covariances), like any start
        return iter((self.weights, self.means, self.covariances))

    def continued_by(self, result: EMResult) -> EMResult:
        """`result` (the run continued from this start) with the screening updates prepended."""
        return dataclasses.replace(
            result,
            log_likelihood_history=np.concatenate([self.history, result.log_likelihood_history[1:]]),
            n_iter=self.n_iter + result.n_iter,
            converged=self.converged or result.converged,
        )


def _screened_starts(X, start_params, n_init, max_iter, run, failures):
    """emEM: yield (start, max_iter left) for the k-means start and the best n_init - 1 screened starts.

    The first of `start_params` (the k-means start) is yielded as it is, with the whole `max_iter`; each
    of the others is run for at most ``SCREENING_ITERATIONS`` updates, and the ``n_init - 1`` best after
    that (see :func:`_rank`) are yielded as :class:`_Screened` starts with the iterations they have left.
    Only their parameters are kept, not the per-sample arrays of every screening run.
    """
    start_params = iter(start_params)
    yield next(start_params), max_iter
    screening_iter = min(SCREENING_ITERATIONS, max_iter)
    kept = []
    for order, params in enumerate(start_params):
        try:
            result = _run_em(X, *params, max_iter=screening_iter, **run)
        except IllConditionedCovarianceError as exc:
            failures.append(exc)
            continue
        screened = _Screened(
            result.weights,
            result.means,
            result.covariances,
            result.log_likelihood_history,
            result.n_iter,
            result.converged,
        )
        # Ties go to the earlier start (-order), so the choice never depends on the sort's details.
        kept.append((_rank(result, run["reg_covar"]), -order, screened))
        kept = sorted(kept, key=lambda item: item[:2], reverse=True)[: n_init - 1]
    for _, _, screened in kept:
        # A start that converged while screening is only evaluated (no update) and keeps its history.
        yield screened, 0 if screened.converged else max_iter - screened.n_iter


def _spawn_generators(random_seed, n):
    if isinstance(random_seed, np.random.Generator):
        return random_seed.spawn(n)
    return [np.random.default_rng(s) for s in np.random.SeedSequence(random_seed).spawn(n)]


def _run_em(X, weights, means, covariances, covariance_type, max_iter, tol, reg_covar) -> EMResult:
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    Xt = np.array(X.T, order="C")  # a writable copy: numba compiles one specialisation only
    structure = get_structure(covariance_type)

    def e_step(weights, means, prec_chol):
        with np.errstate(divide="ignore"):  # an empty component has log weight -inf
            log_weights = np.log(weights)
        stats = fused_estep_statistics(
            Xt,
            np.ascontiguousarray(means),
            structure.full_precision_cholesky(prec_chol, n_components, n_features),
            structure.log_det_precision_cholesky(prec_chol, n_components, n_features),
            log_weights,
            full_scatter=structure.needs_full_scatter,
        )
        if not np.isfinite(stats[0]):
            raise IllConditionedCovarianceError(
                "the log-likelihood became non-finite during EM. " + COLLAPSE_HINT
            )
        return stats

    prec_chol = structure.precision_cholesky(covariances)
    history = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is reported after the loop)
        log_lik, nk, sx, sxx = e_step(weights, means, prec_chol)
        history.append(log_lik)
        weights, means, covariances = parameters_from_statistics(
            nk, sx, sxx, means, reg_covar, covariance_type, previous=covariances
        )
        prec_chol = structure.precision_cholesky(covariances)
        if len(history) > 1 and abs(history[-1] - history[-2]) / n_samples < tol:
            converged = True
            break
    log_density, log_resp = log_responsibilities(X, weights, means, prec_chol, covariance_type)
    final_log_lik = float(np.sum(log_density))
    if not np.isfinite(final_log_lik):
        raise IllConditionedCovarianceError("the final log-likelihood is not finite. " + COLLAPSE_HINT)
    history.append(final_log_lik)
    return EMResult(
        covariance_type=covariance_type,
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=prec_chol,
        log_likelihood=final_log_lik,
        log_likelihood_history=np.asarray(history),
        n_iter=n_iter,
        converged=converged,
        n_samples=n_samples,
        train_log_resp_max=np.max(log_resp, axis=1),
    )


def _check_initial_params(params, covariance_type, n_components, n_features):
    if isinstance(params, EMResult):
        if params.covariance_type != covariance_type:
            raise ValueError(
                f"initial_params was fitted with covariance_type={params.covariance_type!r} but "
                f"covariance_type={covariance_type!r} was requested. Use the same covariance_type."
            )
        params = {"weights": params.weights, "means": params.means, "covariances": params.covariances}
    if not isinstance(params, Mapping) or not {"weights", "means", "covariances"} <= set(params):
        raise ValueError(
            "initial_params must be an EMResult or a mapping with keys 'weights', 'means' and "
            f"'covariances'; got {type(params).__name__}"
            + (f" with keys {sorted(params)}" if isinstance(params, Mapping) else "")
            + "."
        )
    structure = get_structure(covariance_type)
    expected = {
        "weights": (n_components,),
        "means": (n_components, n_features),
        "covariances": structure.shape(n_components, n_features),
    }
    arrays = {}
    for key, shape in expected.items():
        value = np.asarray(params[key], dtype=np.float64)
        if value.shape != shape:
            raise ValueError(
                f"initial_params[{key!r}] must have shape {shape} for {n_components} components, "
                f"{n_features} features and covariance_type={covariance_type!r}; got shape {value.shape}."
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"initial_params[{key!r}] must be finite; it contains NaN or infinity.")
        arrays[key] = value
    weights = arrays["weights"]
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, rtol=1e-6):
        raise ValueError(
            f"initial_params['weights'] must be non-negative and sum to 1; got sum {weights.sum():.6g}. "
            "Normalise them with weights / weights.sum()."
        )
    structure.precision_cholesky(arrays["covariances"])  # raises if not positive definite
    return arrays["weights"], arrays["means"], arrays["covariances"]


def _check_initial_resp(resp, n_samples, n_components):
    resp = np.asarray(resp, dtype=np.float64)
    if resp.shape != (n_samples, n_components):
        raise ValueError(
            f"initial_resp must have shape (n_samples, n_components) = {(n_samples, n_components)}; "
            f"got {resp.shape}."
        )
    if not np.all(np.isfinite(resp)) or np.any(resp < 0) or np.any(resp.sum(axis=1) <= 0):
        raise ValueError(
            "initial_resp must be finite and non-negative with a positive sum in every row; "
            "pass probabilities (e.g. one-hot labels)."
        )
    return resp / resp.sum(axis=1, keepdims=True)
