"""The EM loop, written once for every covariance type, with restarts."""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
from threadpoolctl import ThreadpoolController

from bayes_gmm._validation import (
    check_covariance_type,
    check_data,
    check_n_components,
    check_positive_int,
    check_sample_weight,
    child_seed,
    feature_names_of,
    is_dask_collection,
    seed_sequence,
    warn_if_regularisation_dominates,
)
from bayes_gmm.covariance import get_structure, log_responsibilities
from bayes_gmm.covariance._kernels import fused_estep_statistics
from bayes_gmm.em_baseline._checks import check_initial_params, check_initial_resp, check_options
from bayes_gmm.em_baseline._init import initial_responsibilities
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
    sample_weight=None,
    init_sample_size: int = 100_000,
    progress=None,
) -> EMResult:
    """Fit a Gaussian mixture by maximum likelihood with expectation-maximisation.

    Each EM iteration is one fused pass over the data (compiled with numba, parallel over chunks of
    samples) that computes the responsibilities and the M-step's sufficient statistics together. Data
    larger than memory, or spread over a cluster, can be given as a Dask array (see Notes).

    EM ends at a local maximum that depends on its start: `n_init` starts run to convergence and the best
    is returned. The default starts are chosen to differ (see Notes).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data; NumPy arrays, nested lists and pandas DataFrames are accepted, and a ``dask.array.Array``
        or a Dask DataFrame of numeric columns (fitted chunk by chunk, see Notes).
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
        Convergence threshold on the change of the mean log-likelihood per sample made by one update
        (checked after every update, the last one included).
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance, keeping a collapsing component positive definite.
    initial_params : EMResult or mapping, optional
        Start (warm start) from these parameters: an earlier :class:`EMResult`, or a mapping with keys
        ``weights``, ``means`` and ``covariances`` in the shapes `covariance_type` uses. Needs ``n_init=1``.
    initial_resp : array-like of shape (n_samples, n_components), optional
        Start from these responsibilities (rows are normalised to sum to one). Needs ``n_init=1``.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seed for the starts; the same seed gives the same fit (the accepted kinds: see
        :func:`bayes_gmm._validation.seed_sequence`). Start ``i`` draws from the ``i``-th stream of it, so
        the k-means start (the first) is the same for every `n_init`.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample: a sample of weight ``g`` counts as ``g`` copies of itself
        (integer weights give the fit of the data with the rows repeated). The log-likelihood is the
        weighted sum of the pointwise log-likelihoods, the starts are weighted too, and BIC and ICL use the
        total weight as the number of samples (a weighted sample such as a coreset stands for that many
        points; see :attr:`EMResult.total_weight`). Equal weights (``np.ones(n_samples)``, say) give the
        same starts, and so the same fit, as no weights for the same `random_seed`. For Dask data, a NumPy
        or Dask array.
    init_sample_size : int, default 100_000
        Dask data only: the starts (all `n_init` of them, run to convergence) are made on a uniform random
        sample of this many rows, drawn reproducibly from `random_seed`; then EM runs on all rows from the
        best of them. Data with at most this many rows are fitted whole, in memory.
    progress : callable, optional
        Dask data only: called with a one-line message (ending in "...") before each pass over the data,
        e.g. ``print``.

    Returns
    -------
    EMResult
        With the data's column names as :attr:`EMResult.feature_names` (for a pandas or Dask DataFrame),
        by which it matches the columns of the DataFrames it predicts for.

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
    Dask data. A ``dask.array.Array`` (or a Dask DataFrame, converted with ``to_dask_array``) is never
    loaded whole: each EM iteration maps the same fused kernel (serial per chunk; Dask runs the chunks in
    parallel) over the chunks of rows, each giving the log-likelihood and the sufficient statistics of
    its rows, sums them in a tree and does the M-step here. ``dask.compute`` runs the passes: on the
    threaded scheduler by default, on a ``dask.distributed`` cluster when a ``Client`` is active. A first
    pass checks the values (and the sample weights) and draws the sample for the starts; one more pass at
    the end computes the final log-likelihood and ICL's term. The result holds no per-sample array
    (:attr:`EMResult.train_log_resp_max` is None). A chunk's rows are held in memory at once (and twice,
    transposed, in the kernel): choose chunks of about 10^5-10^6 rows. On a cluster, ``X.persist()`` an
    array that fits in the workers' memory, or each iteration reads it again from its source. From the
    same start (`initial_params`) the fit equals the in-memory one up to the order of floating-point sums
    (about 1e-12 relative).


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
    random_seed = seed_sequence(random_seed)
    if is_dask_collection(X):
        from bayes_gmm.em_baseline._dask import fit_em_dask

        options = check_options(init, n_init, max_iter, tol, reg_covar, initial_params, initial_resp)
        return fit_em_dask(
            X,
            n_components,
            covariance_type=covariance_type,
            **options,
            initial_params=initial_params,
            initial_resp=initial_resp,
            random_seed=random_seed,
            sample_weight=sample_weight,
            init_sample_size=check_positive_int(init_sample_size, "init_sample_size"),
            progress=progress,
        )
    feature_names = feature_names_of(X)
    X = check_data(X, min_samples=n_components)
    get_structure(covariance_type).check_features(X.shape[1])
    options = check_options(init, n_init, max_iter, tol, reg_covar, initial_params, initial_resp)
    init, n_init, max_iter, tol, reg_covar = options.values()
    sample_weight = check_sample_weight(sample_weight, X.shape[0], n_components)
    warn_if_regularisation_dominates(X, reg_covar)
    warm_start = initial_params is not None or initial_resp is not None
    if initial_params is not None:
        start_params = [check_initial_params(initial_params, covariance_type, n_components, X.shape[1])]
    elif initial_resp is not None:
        resp = check_initial_resp(initial_resp, X.shape[0], n_components)
        start_params = [parameters_from_responsibilities(X, resp, reg_covar, covariance_type, sample_weight)]
    else:
        screened = init == "kmeans" and n_init > 1
        rngs = _spawn_generators(random_seed, SCREENED_PER_RUN * n_init if screened else n_init)
        kinds = [init] + ["kmeans++" if screened else init] * (len(rngs) - 1)
        start_params = (
            parameters_from_responsibilities(
                X,
                initial_responsibilities(X, n_components, kind, rng, sample_weight),
                reg_covar,
                covariance_type,
                sample_weight,
            )
            for kind, rng in zip(kinds, rngs, strict=True)
        )

    best, failures = None, []
    n_starts = 1 if warm_start else len(rngs)
    run = {
        "covariance_type": covariance_type,
        "tol": tol,
        "reg_covar": reg_covar,
        "sample_weight": sample_weight,
    }
    # The loop's only BLAS calls are on K tiny D x D matrices; a multi-threaded BLAS left spinning after
    # each of them starves numba's worker threads (measured: 100x slower per iteration on 2 cores).
    with one_blas_thread():
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
    return dataclasses.replace(best, feature_names=feature_names)


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


def _spawn_generators(root: np.random.SeedSequence, n):
    return [np.random.default_rng(child_seed(root, i)) for i in range(n)]


def _run_em(
    X, weights, means, covariances, covariance_type, max_iter, tol, reg_covar, sample_weight=None
) -> EMResult:
    n_samples = X.shape[0]
    Xt = np.array(X.T, order="C")  # a writable copy: numba compiles one specialisation only
    structure = get_structure(covariance_type)
    # A weighted fit's log-likelihood is the weighted sum of the pointwise ones (the kernel's own sum is
    # unweighted); a row of weight 0 does not count, even where its density is 0.
    pointwise = None if sample_weight is None else np.empty(n_samples)
    n_total = n_samples if sample_weight is None else float(sample_weight.sum())

    def statistics(means, prec_chol_full, log_det, log_weights, full_scatter):
        stats = fused_estep_statistics(
            Xt,
            means,
            prec_chol_full,
            log_det,
            log_weights,
            full_scatter=full_scatter,
            sample_weight=sample_weight,
            pointwise=pointwise,
        )
        return stats if sample_weight is None else (weighted_sum(pointwise, sample_weight), *stats[1:])

    iterations = em_iterations(
        statistics,
        weights,
        means,
        covariances,
        structure,
        max_iter=max_iter,
        tol=tol,
        reg_covar=reg_covar,
        n_total=n_total,
    )
    weights, means, prec_chol = iterations[0], iterations[1], iterations[3]
    log_density, log_resp = log_responsibilities(X, weights, means, prec_chol, covariance_type)
    log_resp_max = np.max(log_resp, axis=1)
    if sample_weight is None:
        final_log_lik, log_resp_max_sum = float(np.sum(log_density)), None
    else:
        final_log_lik = weighted_sum(log_density, sample_weight)
        log_resp_max_sum = weighted_sum(log_resp_max, sample_weight)
    return finished_result(
        iterations,
        final_log_lik,
        tol=tol,
        covariance_type=covariance_type,
        n_samples=n_samples,
        train_log_resp_max=log_resp_max,
        train_log_resp_max_sum=log_resp_max_sum,
        total_weight=None if sample_weight is None else n_total,
    )


def finished_result(
    iterations,
    final_log_lik,
    *,
    tol,
    covariance_type,
    n_samples,
    train_log_resp_max,
    train_log_resp_max_sum,
    total_weight,
) -> EMResult:
    """The :class:`EMResult` of one start: what :func:`em_iterations` returned, with the final log-likelihood.

    The last update's change (from the last E-step's log-likelihood to `final_log_lik`) is compared with
    `tol` too, as every earlier one is, so a start that ran out of updates converged if that change is
    below `tol`. The other arguments are the :class:`EMResult` fields of the same names. Raises
    IllConditionedCovarianceError if the final log-likelihood is not finite.
    """
    weights, means, covariances, prec_chol, history, n_iter, converged = iterations
    if not np.isfinite(final_log_lik):
        raise IllConditionedCovarianceError("the final log-likelihood is not finite. " + COLLAPSE_HINT)
    n_total = n_samples if total_weight is None else total_weight
    if not converged and history and abs(final_log_lik - history[-1]) / n_total < tol:
        converged = True
    return EMResult(
        covariance_type=covariance_type,
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=prec_chol,
        log_likelihood=final_log_lik,
        log_likelihood_history=np.asarray([*history, final_log_lik]),
        n_iter=n_iter,
        converged=converged,
        n_samples=n_samples,
        train_log_resp_max=train_log_resp_max,
        train_log_resp_max_sum=train_log_resp_max_sum,
        total_weight=total_weight,
    )


@functools.cache
def _threadpools() -> ThreadpoolController:
    # Finding the loaded BLAS libraries costs ~1.5 ms, a lot next to a short fit (search_models runs
    # hundreds): look once. NumPy's BLAS is loaded by then.
    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS uses one thread (the EM loop's BLAS calls are on tiny matrices)."""
    return _threadpools().limit(limits=1, user_api="blas")


def em_iterations(
    statistics,
    weights,
    means,
    covariances,
    structure,
    *,
    max_iter,
    tol,
    reg_covar,
    n_total,
    before_iteration=None,
):
    """The EM updates from one start, whatever computes the E-step's statistics.

    ``statistics(means, prec_chol_full, log_det, log_weights, full_scatter)`` returns ``(log_lik, nk, sx,
    sxx)`` over all the data (one kernel call in memory, a pass over the chunks on Dask); EM stops when the
    mean log-likelihood per unit of weight (`n_total`) changes by less than `tol`, or after `max_iter`
    updates. ``before_iteration(n_iter, history)`` is called before each E-step (progress reports).

    Returns
    -------
    weights, means, covariances, prec_chol, history, n_iter, converged
    """
    n_components, n_features = means.shape
    prec_chol = structure.precision_cholesky(covariances)
    history, converged, n_iter = [], False, 0
    for n_iter in range(1, max_iter + 1):
        if before_iteration is not None:
            before_iteration(n_iter, history)
        with np.errstate(divide="ignore"):  # an empty component has log weight -inf
            log_weights = np.log(weights)
        log_lik, nk, sx, sxx = statistics(
            np.ascontiguousarray(means),
            structure.full_precision_cholesky(prec_chol, n_components, n_features),
            structure.log_det_precision_cholesky(prec_chol, n_components, n_features),
            log_weights,
            structure.needs_full_scatter,
        )
        if not np.isfinite(log_lik):
            raise IllConditionedCovarianceError(
                "the log-likelihood became non-finite during EM. " + COLLAPSE_HINT
            )
        history.append(float(log_lik))
        weights, means, covariances = parameters_from_statistics(
            nk, sx, sxx, means, reg_covar, structure.name, previous=covariances
        )
        prec_chol = structure.precision_cholesky(covariances)
        if len(history) > 1 and abs(history[-1] - history[-2]) / n_total < tol:
            converged = True
            break
    return weights, means, covariances, prec_chol, history, n_iter, converged


def weighted_sum(values, sample_weight) -> float:
    """``sum_i g_i v_i`` over the rows of positive weight ``g_i`` (a row of weight 0 adds 0, even if ``v_i``
    is infinite or NaN)."""
    return float(np.dot(np.where(sample_weight > 0, values, 0.0), sample_weight))
