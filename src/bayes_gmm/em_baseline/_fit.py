"""The EM loop, written once for every covariance type, with restarts."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from bayes_gmm._validation import (
    check_choice,
    check_covariance_type,
    check_data,
    check_n_components,
    check_positive_int,
    check_sample_weight,
    feature_names_of,
    is_dask_collection,
    seed_sequence,
    warn_if_regularisation_dominates,
)
from bayes_gmm.covariance import MCLUST_VVE, get_structure, log_responsibilities
from bayes_gmm.covariance._kernels import fused_estep_statistics
from bayes_gmm.em_baseline._checks import check_initial_params, check_initial_resp, check_options
from bayes_gmm.em_baseline._em_loop import em_iterations, finished_result, one_blas_thread, weighted_sum
from bayes_gmm.em_baseline._hc import HC_SAMPLE_SIZE, HC_TRANSFORMS
from bayes_gmm.em_baseline._mstep import parameters_from_responsibilities
from bayes_gmm.em_baseline._result import EMResult
from bayes_gmm.em_baseline._starts import (
    HC_INNER_ITERATIONS,
    SCREENING_ITERATIONS,
    Screened,
    Start,
    describe_starts,
    further_starts,
    planned_starts,
    spawn_generators,
    start_parameters,
)
from bayes_gmm.exceptions import COLLAPSE_HINT, ConvergenceWarning, IllConditionedCovarianceError

#: Data sets larger than this are never clustered whole by the hierarchical start: it holds an (n, n)
#: matrix of merge costs (3.2 GB at 20,000 rows).
HC_MAX_SAMPLE_SIZE = 20_000
#: init_sample_size's default for Dask data: the rows all the starts are made on.
DASK_SAMPLE_SIZE = 100_000


def warn_if_fewer_distinct_rows(X: np.ndarray, n_components: int, sample_weight=None) -> None:
    """Warn if `X` has fewer distinct rows (of positive weight) than `n_components`.

    Such a fit can only end with components of weight 0 or several on one point (mclust returns NA;
    scikit-learn fits, and its own tests expect a fit). Most data show `n_components` distinct rows among
    their first few, so the full count is rarely needed.
    """
    rows = X if sample_weight is None else X[sample_weight > 0]
    for head in (rows[: 64 * n_components], rows):
        distinct = len(np.unique(head, axis=0))
        if distinct >= n_components:
            return
    warnings.warn(
        f"n_components = {n_components} is more than the {distinct} distinct rows of X"
        f"{' with a positive sample_weight' if sample_weight is not None else ''}: the fit has components of "
        f"weight 0 or several on one point. Use n_components <= {distinct}.",
        UserWarning,
        stacklevel=3,
    )


def fit_em(
    X,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str = "hc",
    n_init: int = 5,
    max_iter: int = 1000,
    tol: float = 1e-6,
    reg_covar: float = 1e-6,
    initial_params=None,
    initial_resp=None,
    random_seed=None,
    sample_weight=None,
    init_sample_size: int | None = None,
    hc_use: str = "SVD",
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
    init : {"hc", "kmeans", "kmeans++", "random"}, default "hc"
        How the starts are made. "hc": the partition of a model-based hierarchical clustering (R mclust's
        start, see Notes) plus screened k-means++ starts. "kmeans": one k-means start plus screened
        k-means++ starts. "kmeans++": hard assignments to the nearest k-means++ seed. "random": random
        responsibilities.
    n_init : int, default 5
        Number of starts run to convergence; the fit with the highest final log-likelihood (collapsed
        fits last, see Notes) is returned. With ``init="hc"`` or ``"kmeans"``, ``4 * n_init - 1`` further
        starts are screened to choose ``n_init - 1`` of them.
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
        the first start (hierarchical or k-means) is the same for every `n_init`; the hierarchical start
        uses its stream only to draw the subset of rows it clusters.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample: a sample of weight ``g`` counts as ``g`` copies of itself
        (integer weights give the fit of the data with the rows repeated). The log-likelihood is the
        weighted sum of the pointwise log-likelihoods, the starts are weighted too, and BIC and ICL use the
        total weight as the number of samples (a weighted sample such as a coreset stands for that many
        points; see :attr:`EMResult.total_weight`). Equal weights (``np.ones(n_samples)``, say) give the
        same starts, and so the same fit, as no weights for the same `random_seed`. For Dask data, a NumPy
        or Dask array.
    init_sample_size : int, optional
        The starts that need a subset of the rows are made on a uniform random subset of this many, drawn
        reproducibly from `random_seed`. In memory, the hierarchical clustering of ``init="hc"`` runs on
        a subset of this many rows of positive weight (default 2,000, as mclust; time and memory grow as
        its square, at most 20,000). Dask data: all the starts (all `n_init` of them, run to convergence)
        are made on a sample of this many rows (default 100,000), in memory (the hierarchical start on
        2,000 of them), and EM runs on all rows from the best of them; data with at most this many rows
        are fitted whole, in memory.
    hc_use : {"SVD", "VARS"}, default "SVD"
        The data the hierarchical start clusters (mclust's option ``hcUse``): "SVD", mclust's default, the
        standardised data projected on their principal axes, each scaled by the inverse square root of its
        singular value; "VARS", the data as they are.
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
        If every start ends with a covariance that is not positive definite, the further starts tried
        then too (see Notes).

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


    Restarts. With ``init="hc"`` (the default) or ``init="kmeans"`` the starts differ by design (the
    "emEM" strategy of [1]_). The first is run to convergence: with "hc", the partition into
    `n_components` clusters of the model-based agglomerative hierarchical clustering R's mclust starts
    every fit from ([2]_; mclust's ``hc(modelName = "VVV", use = hc_use)``, on a random subset of
    `init_sample_size` rows of large data; for one feature, mclust's start there, the classes between
    quantiles); with "kmeans", Lloyd's k-means from k-means++ seeds. Then
    ``4 * n_init - 1`` candidate starts, each the partition of the data to the nearest of a fresh
    k-means++ seeding, are screened by at most 10 EM updates each, and the ``n_init - 1`` candidates with
    the highest log-likelihood after screening continue to convergence (their screening updates count
    towards `max_iter` and appear in the log-likelihood history). The hierarchical start reaches the
    maxima that mclust reaches, which k-means partitions often miss on data whose features differ in
    scale or correlate strongly; the k-means++ starts are diverse, and the screening spends the long runs
    on the promising ones. The result is never worse than the first start alone (``n_init=1``, which
    runs only that start; the exception is a collapsed first fit, below), and the k-means++ candidates
    are the same for both methods and the same seed. ``init="kmeans++"`` and ``init="random"`` run each
    of their `n_init` starts to convergence, without screening.

    VVE: mclust's M-step of this model is not the exact maximiser ours is (its orientation update leaves
    out the volumes), so from the same partition its EM can end at another maximum, sometimes a higher
    one. The hierarchical start of a VVE fit therefore runs EM twice: with the exact M-step, and with
    mclust's continued by the exact one (one history, with the iterations of both), and keeps the better.

    When every start fails (each ends with a covariance that is not positive definite), further starts
    are tried, each to convergence: the hierarchical starts not tried yet (the other `hc_use`), then
    `n_init` fresh k-means++ starts. The error raised when these fail too says how many starts of each
    kind were tried.

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
    .. [2] C. Fraley (1998), "Algorithms for model-based Gaussian hierarchical clustering", *SIAM Journal
       on Scientific Computing* 20, 270-281.
    """
    n_components = check_n_components(n_components)
    covariance_type = check_covariance_type(covariance_type)
    random_seed = seed_sequence(random_seed)
    hc_use = check_choice(hc_use, "hc_use", HC_TRANSFORMS)
    if init_sample_size is not None:
        init_sample_size = check_positive_int(init_sample_size, "init_sample_size")
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
            init_sample_size=DASK_SAMPLE_SIZE if init_sample_size is None else init_sample_size,
            hc_use=hc_use,
            progress=progress,
        )
    feature_names = feature_names_of(X)
    X = check_data(X, min_samples=n_components)
    get_structure(covariance_type).check_features(X.shape[1])
    options = check_options(init, n_init, max_iter, tol, reg_covar, initial_params, initial_resp)
    init, n_init, max_iter, tol, reg_covar = options.values()
    sample_weight = check_sample_weight(sample_weight, X.shape[0], n_components)
    warn_if_fewer_distinct_rows(X, n_components, sample_weight)
    hc_sample_size = _hc_sample_size(init_sample_size, X.shape[0])
    warn_if_regularisation_dominates(X, reg_covar)
    run = {
        "covariance_type": covariance_type,
        "tol": tol,
        "reg_covar": reg_covar,
        "sample_weight": sample_weight,
    }
    if initial_params is not None or initial_resp is not None:
        if initial_params is not None:
            params = check_initial_params(initial_params, covariance_type, n_components, X.shape[1])
        else:
            resp = check_initial_resp(initial_resp, X.shape[0], n_components)
            params = parameters_from_responsibilities(X, resp, reg_covar, covariance_type, sample_weight)
        with one_blas_thread():
            try:
                best = _run_em(X, *params, max_iter=max_iter, **run)
            except IllConditionedCovarianceError as exc:
                raise IllConditionedCovarianceError(f"EM failed from the start given: {exc}") from None
        return _finished(best, max_iter, tol, feature_names)

    planned = planned_starts(init, n_init, hc_use)
    further = further_starts(init, n_init, hc_use, X.shape[1])
    rngs = spawn_generators(random_seed, len(planned) + len(further))

    def starts(kinds, generators, failures):
        for kind, rng in zip(kinds, generators, strict=True):
            inner = HC_INNER_ITERATIONS if kind[0] == "hc" else None
            # VVE: the hierarchical start also runs mclust's EM path (its M-step is not ours, see MCLUST_VVE)
            also_via = MCLUST_VVE if kind[0] == "hc" and covariance_type == "VVE" else None
            try:
                yield Start(
                    *start_parameters(
                        X,
                        n_components,
                        kind,
                        rng,
                        reg_covar=reg_covar,
                        covariance_type=covariance_type,
                        sample_weight=sample_weight,
                        hc_sample_size=hc_sample_size,
                    ),
                    inner_iterations=inner,
                    also_via=also_via,
                )
            except IllConditionedCovarianceError as exc:  # counted as a start that collapsed
                failures.append(exc)
                yield None

    failures = []
    # The loop's only BLAS calls are on K tiny D x D matrices; a multi-threaded BLAS left spinning after
    # each of them starves numba's worker threads (measured: 100x slower per iteration on 2 cores).
    with one_blas_thread():
        screened = len(planned) > n_init
        runs = starts(planned, rngs[: len(planned)], failures)
        if screened:
            runs = _screened_starts(X, runs, n_init, max_iter, run, failures)
        else:
            runs = ((params, max_iter) for params in runs)
        best = _best_run(X, runs, run, failures)
        tried = planned
        if best is None:
            runs = ((params, max_iter) for params in starts(further, rngs[len(planned) :], failures))
            best, tried = _best_run(X, runs, run, failures), planned + further
    if best is None:
        first = str(failures[0]).replace(COLLAPSE_HINT, "").strip()
        raise IllConditionedCovarianceError(
            f"EM failed: all {len(tried)} starts ({describe_starts(planned, X.shape[1])}; then "
            f"{describe_starts(further, X.shape[1])}) ended with a collapsed component (the first: {first}) "
            + COLLAPSE_HINT
        )
    if failures:
        warnings.warn(
            f"{len(failures)} of {len(tried)} EM starts failed with a "
            f"collapsed component and were skipped. {failures[0]}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return _finished(best, max_iter, tol, feature_names)


def _hc_sample_size(init_sample_size, n_samples) -> int:
    """The number of rows the hierarchical start clusters at most, checked."""
    if init_sample_size is None:
        return HC_SAMPLE_SIZE
    if min(init_sample_size, n_samples) > HC_MAX_SAMPLE_SIZE:
        raise ValueError(
            f"init_sample_size must be at most {HC_MAX_SAMPLE_SIZE} for data in memory (the hierarchical "
            f"start holds a matrix of n^2 merge costs, 3.2 GB at {HC_MAX_SAMPLE_SIZE} rows); got "
            f"init_sample_size={init_sample_size} for {n_samples} rows. Leave it out (2,000 rows, as mclust) "
            f"or pass e.g. init_sample_size=5000."
        )
    return init_sample_size


def _best_run(X, runs, run, failures):
    """The best EM fit (see :func:`_rank`) from ``(start, max_iter)`` pairs; None if every one failed.

    A start that is None (its parameters could not be made) is skipped; failed runs go to `failures`.
    """
    best = None
    for params, budget in runs:
        if params is None:
            continue
        try:
            result = _run_em(X, *params, max_iter=budget, inner_iterations=params.inner_iterations, **run)
        except IllConditionedCovarianceError as exc:
            failures.append(exc)
            continue
        if isinstance(params, Screened):
            result = params.continued_by(result)
        elif params.also_via is not None:
            result = _better_via(X, params, budget, run, result)
        if best is None or _rank(result, run["reg_covar"]) > _rank(best, run["reg_covar"]):
            best = result
    return best


def _better_via(X, start, budget, run, result):
    """The better of `result` and EM from `start` by the M-step of ``start.also_via`` continued by EM (the
    exact M-step) from where it stopped; `result` if that fails."""
    try:
        via = _run_em(
            X, *start, max_iter=budget, inner_iterations=start.inner_iterations, m_step=start.also_via, **run
        )
        continued = _run_em(X, via.weights, via.means, via.covariances, max_iter=budget - via.n_iter, **run)
    except IllConditionedCovarianceError:
        return result
    path = Screened(via.weights, via.means, via.covariances, via.log_likelihood_history, via.n_iter, False)
    return max((result, path.continued_by(continued)), key=lambda fit: _rank(fit, run["reg_covar"]))


def _finished(result, max_iter, tol, feature_names):
    """`result` with the data's column names, after warning if it did not converge."""
    if not result.converged and max_iter > 0:
        warnings.warn(
            f"EM did not converge in max_iter={max_iter} iterations (tol={tol}). Increase max_iter or tol, "
            f"or check the data's scale.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return dataclasses.replace(result, feature_names=feature_names)


def _collapsed(covariances, covariance_type, reg_covar) -> bool:
    """Whether some component's covariance is at most ``2 * reg_covar`` in some direction."""
    return get_structure(covariance_type).smallest_variance(covariances) <= 2.0 * reg_covar


def _rank(result, reg_covar):
    # Fits without a collapsed component first, then by log-likelihood.
    return (not _collapsed(result.covariances, result.covariance_type, reg_covar), result.log_likelihood)


def _screened_starts(X, start_params, n_init, max_iter, run, failures):
    """emEM: yield (start, max_iter left) for the first start and the best n_init - 1 screened starts.

    The first of `start_params` (the hierarchical or k-means start) is yielded as it is, with the whole
    `max_iter`; each of the others is run for at most ``SCREENING_ITERATIONS`` updates, and the
    ``n_init - 1`` best after that (see :func:`_rank`) are yielded as :class:`Screened` starts with the
    iterations they have left. Only their parameters are kept, not the per-sample arrays of every
    screening run. A start that is None (its parameters could not be made) is skipped.
    """
    start_params = iter(start_params)
    yield next(start_params), max_iter
    screening_iter = min(SCREENING_ITERATIONS, max_iter)
    kept = []
    for order, params in enumerate(start_params):
        if params is None:  # its parameters could not be made (counted in failures)
            continue
        try:
            result = _run_em(X, *params, max_iter=screening_iter, **run)
        except IllConditionedCovarianceError as exc:
            failures.append(exc)
            continue
        screened = Screened(
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


def _run_em(
    X,
    weights,
    means,
    covariances,
    covariance_type,
    max_iter,
    tol,
    reg_covar,
    sample_weight=None,
    inner_iterations=None,
    m_step=None,
) -> EMResult:
    # `m_step`: a structure whose M-step replaces covariance_type's (MCLUST_VVE); the result is named
    # covariance_type.
    n_samples = X.shape[0]
    Xt = np.array(X.T, order="C")  # a writable copy: numba compiles one specialisation only
    structure = get_structure(covariance_type if m_step is None else m_step)
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
        inner_iterations=inner_iterations,
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
