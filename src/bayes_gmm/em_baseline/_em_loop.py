"""The EM updates from one start, and their result, shared by the in-memory and the Dask fits."""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import ThreadpoolController

from bayes_gmm.em_baseline._mstep import parameters_from_statistics
from bayes_gmm.em_baseline._result import EMResult
from bayes_gmm.exceptions import COLLAPSE_HINT, IllConditionedCovarianceError


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
    inner_iterations=None,
):
    """The EM updates from one start, whatever computes the E-step's statistics.

    ``statistics(means, prec_chol_full, log_det, log_weights, full_scatter)`` returns ``(log_lik, nk, sx,
    sxx)`` over all the data (one kernel call in memory, a pass over the chunks on Dask); EM stops when the
    mean log-likelihood per unit of weight (`n_total`) changes by less than `tol`, or after `max_iter`
    updates. ``before_iteration(n_iter, history)`` is called before each E-step (progress reports).
    `inner_iterations` bounds the iterative M-steps (see
    :meth:`~bayes_gmm.covariance.CovarianceStructure.m_step`).

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
            nk,
            sx,
            sxx,
            means,
            reg_covar,
            structure,
            previous=covariances,
            inner_iterations=inner_iterations,
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
