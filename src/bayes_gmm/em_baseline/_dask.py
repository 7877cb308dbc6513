"""EM over a Dask array: out-of-core on one machine, or on a ``dask.distributed`` cluster.

Each EM iteration maps the fused E-step kernel of :mod:`bayes_gmm.covariance._kernels` (serial, one call per
chunk of rows, with the GIL released so that Dask's threads run chunks in parallel) over the chunks, each
task returning ``(log_lik, nk, sx, sxx)`` for its rows. The statistics are moments about the current
means, so the chunks' statistics simply add up; a tree of sums brings them to the client, which does the
M-step (:func:`~bayes_gmm.em_baseline._mstep.parameters_from_statistics`, as in memory). The passes run
through ``dask.compute``: Dask's threaded scheduler by default, the cluster of an active ``Client``
otherwise.

Before EM, one pass checks every value (and sample weight) and draws a uniform random sample of rows on
which the starts run in memory (:func:`bayes_gmm.em_baseline.fit_em`); EM over all rows continues from the
best of them. Data no larger than the sample are fitted whole, in memory.
"""

from __future__ import annotations

import dataclasses
import warnings

import dask
import dask.array as da
import numpy as np

from bayes_gmm._numba_cache import kernel_njit
from bayes_gmm._validation import (
    MAX_ABS_VALUE,
    _is_numeric_dtype,
    check_sample_weight,
    child_seed,
    feature_names_of,
    seed_sequence,
)
from bayes_gmm.covariance import get_structure, log_responsibilities
from bayes_gmm.covariance._kernels import serial_fused_estep_statistics
from bayes_gmm.em_baseline._checks import check_initial_params
from bayes_gmm.em_baseline._em_loop import em_iterations, finished_result, one_blas_thread, weighted_sum
from bayes_gmm.em_baseline._fit import fit_em
from bayes_gmm.em_baseline._result import EMResult
from bayes_gmm.exceptions import ConvergenceWarning

#: Chunks combined per node of the reduction tree.
FAN_IN = 8
#: The spawn key of the random stream that draws the sample for the starts (the starts use keys 0, 1, ...).
_SAMPLE_STREAM = 2**32 - 1
_NONE = np.empty(0)


@kernel_njit(nogil=True)
def _chunk_kernel(Xt, means, prec_chol_full, log_det, log_weights, full_scatter, sample_weight, pointwise):
    # The in-memory kernel, serial, called with the GIL released: Dask's threads run chunks side by side.
    return serial_fused_estep_statistics(
        Xt, means, prec_chol_full, log_det, log_weights, full_scatter, sample_weight, pointwise
    )


def fit_em_dask(
    X,
    n_components,
    *,
    covariance_type,
    init,
    n_init,
    max_iter,
    tol,
    reg_covar,
    initial_params,
    initial_resp,
    random_seed,
    sample_weight,
    init_sample_size,
    hc_use,
    progress,
) -> EMResult:
    """:func:`bayes_gmm.em_baseline.fit_em` for a Dask array or DataFrame (options already checked).

    The result has a Dask DataFrame's column names as its feature names.
    """
    say = progress if progress is not None else (lambda message: None)
    feature_names = feature_names_of(X)
    X, n_samples, n_features = as_dask_array(X, n_components)
    get_structure(covariance_type).check_features(n_features)
    if initial_resp is not None:
        raise ValueError(
            "initial_resp is not supported for Dask data (it would be an (n_samples, n_components) array in "
            "memory); pass initial_params, e.g. an EMResult fitted to a sample of the rows."
        )
    start = None
    if initial_params is not None:
        start = check_initial_params(initial_params, covariance_type, n_components, n_features)
    weight_array = _as_weight_array(sample_weight, X, n_samples, n_components)
    random_seed = seed_sequence(random_seed)  # one root for the sample and the starts alike
    sample_rng = np.random.default_rng(child_seed(random_seed, _SAMPLE_STREAM))
    if start is not None:
        sample_index = np.empty(0, dtype=np.int64)
    elif n_samples <= init_sample_size:
        sample_index = None  # every row, in order
    else:
        sample_index = np.sort(sample_rng.choice(n_samples, size=init_sample_size, replace=False))

    blocks = list(X.to_delayed().ravel())
    weight_blocks = [None] * len(blocks) if weight_array is None else list(weight_array.to_delayed())
    say(f"reading {n_samples} rows in {len(blocks)} chunks: checking the values ...")
    survey = _survey(blocks, weight_blocks, X.chunks[0], sample_index)
    _check_survey(survey, weight_array is not None, n_components)
    run = {"covariance_type": covariance_type, "max_iter": max_iter, "tol": tol, "reg_covar": reg_covar}
    if start is None:
        sample, sample_weights = survey["sample"], survey["sample_weight"]
        if sample_weights is not None and sample_index is not None:
            positive = int(np.count_nonzero(sample_weights))
            if positive < n_components:
                raise ValueError(
                    f"the random sample of {len(sample)} rows that the EM starts are made on holds {positive} "
                    f"row(s) with a positive sample_weight, fewer than n_components = {n_components}: most rows "
                    f"weigh 0. Raise init_sample_size (e.g. to {min(n_samples, 10 * len(sample))}), or drop the "
                    f"rows of weight 0 before fitting."
                )
        if sample_index is None:
            say(f"EM on all {n_samples} rows in memory ({n_init} starts) ...")
        else:
            say(f"EM starts on a random sample of {len(sample)} rows ({n_init} starts) ...")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = fit_em(
                sample,
                n_components,
                init=init,
                n_init=n_init,
                random_seed=random_seed,
                sample_weight=sample_weights,
                hc_use=hc_use,
                **run,
            )
        for warning in caught:  # whether the sample's fit converged does not matter, the final one's does
            if sample_index is None or not issubclass(warning.category, ConvergenceWarning):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        if sample_index is None:
            return dataclasses.replace(fit, train_log_resp_max=None, feature_names=feature_names)
        start = (fit.weights, fit.means, fit.covariances)
    n_total = n_samples if weight_array is None else survey["total_weight"]
    result = _run_em_dask(blocks, weight_blocks, n_samples, n_total, *start, **run, say=say)
    if not result.converged and max_iter > 0:
        warnings.warn(
            f"EM did not converge in max_iter={max_iter} iterations (tol={tol}). Increase max_iter or tol, "
            f"or check the data's scale.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return dataclasses.replace(result, feature_names=feature_names)


# -- the data --------------------------------------------------------------------------------------------


def as_dask_array(X, n_components: int = 1):
    """A 2-D Dask array with known row chunks and all columns in one chunk, and its shape."""
    if isinstance(getattr(X, "data", None), da.Array):  # an xarray.DataArray backed by Dask
        X = X.data
    if hasattr(X, "to_dask_array") and hasattr(X, "dtypes") and hasattr(X.dtypes, "items"):
        non_numeric = [str(c) for c, t in X.dtypes.items() if not _is_numeric_dtype(t)]
        if non_numeric:
            raise TypeError(
                f"X must contain only numeric columns; got non-numeric column(s) {non_numeric}. Select the "
                f"numeric columns first, e.g. X[[...numeric columns...]]."
            )
        X = X.to_dask_array(lengths=True)
    elif hasattr(X, "to_dask_array"):  # a Dask Series
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(
            f"X is a Dask collection of type {type(X).__name__}; fit_em takes a dask.array.Array or a Dask "
            f"DataFrame of numeric columns. Convert it, e.g. with .to_dask_array(lengths=True)."
        )
    if X.ndim != 2:
        hint = " For a single feature use X.reshape(-1, 1)." if X.ndim == 1 else ""
        raise ValueError(
            f"X must be 2-D with shape (n_samples, n_features); got a Dask array with {X.ndim} dimension(s) "
            f"and shape {X.shape}.{hint}"
        )
    if not _is_numeric_dtype(X.dtype):
        raise TypeError(
            f"X must be numeric data of shape (n_samples, n_features); got a Dask array of dtype {X.dtype}. "
            f"Convert it, e.g. X.astype(float)."
        )
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    n_samples, n_features = (int(n) for n in X.shape)
    if n_features < 1:
        raise ValueError(f"X must have at least one feature (column); got shape {X.shape}.")
    if n_samples < n_components:
        raise ValueError(
            f"X has {n_samples} sample(s) but at least {n_components} are needed (one per mixture component). "
            f"Use fewer components or more data."
        )
    return X, n_samples, n_features


def _as_weight_array(sample_weight, X, n_samples, n_components):
    """`sample_weight` as a 1-D Dask array chunked like X's rows (values checked in the first pass)."""
    if sample_weight is None:
        return None
    if hasattr(sample_weight, "to_dask_array"):  # a Dask Series
        sample_weight = sample_weight.to_dask_array(lengths=True)
    if not isinstance(sample_weight, da.Array):
        weights = check_sample_weight(sample_weight, n_samples, n_components)
        return da.from_array(weights, chunks=(X.chunks[0],))
    if sample_weight.ndim == 1 and any(np.isnan(c) for c in sample_weight.chunks[0]):
        sample_weight = sample_weight.compute_chunk_sizes()  # e.g. after boolean indexing
    if sample_weight.ndim != 1 or sample_weight.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must be a 1-D array of n_samples = {n_samples} finite, non-negative weights (one "
            f"per row of X); got a Dask array of shape {sample_weight.shape}. Pass one weight per row of X."
        )
    if not _is_numeric_dtype(sample_weight.dtype):
        raise TypeError(
            f"sample_weight must be a 1-D array of n_samples = {n_samples} finite, non-negative weights; got "
            f"a Dask array of dtype {sample_weight.dtype}. Convert it, e.g. sample_weight.astype(float)."
        )
    return sample_weight.rechunk((X.chunks[0],))


def _survey_chunk(block, weight, take):
    """One chunk's checks, and its rows (and weights) in the sample: `take` is an index or None (all)."""
    block = np.asarray(block)
    bad = ~np.isfinite(block)
    any_bad = bool(bad.any())
    magnitude = np.abs(np.where(bad, 0.0, block) if any_bad else block)
    largest = np.unravel_index(magnitude.argmax(), block.shape) if block.size else None
    report = {
        "bad_rows": int(bad.any(axis=1).sum()) if any_bad else 0,
        "first_bad": tuple(int(i) for i in np.argwhere(bad)[0]) if any_bad else None,
        "max_abs": float(magnitude[largest]) if block.size else 0.0,
        "argmax_abs": largest,
        "sample": np.asarray(block if take is None else block[take], dtype=np.float64),
    }
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float64)
        finite = np.isfinite(weight)
        report.update(
            bad_weights=int((~finite).sum()),
            first_bad_weight=int(np.flatnonzero(~finite)[0]) if not finite.all() else None,
            negative_weights=int((weight < 0).sum()),
            first_negative_weight=int(np.flatnonzero(weight < 0)[0]) if (weight < 0).any() else None,
            positive_weights=int((weight > 0).sum()),
            total_weight=float(weight[finite & (weight > 0)].sum()),
            sample_weight=weight if take is None else weight[take],
        )
    return report


def _survey(blocks, weight_blocks, row_chunks, sample_index):
    """The first pass: every chunk's checks and sample rows, combined (offsets made global)."""
    offsets = np.concatenate([[0], np.cumsum(row_chunks)])
    takes = []
    for i in range(len(blocks)):
        if sample_index is None:
            takes.append(None)
        else:
            lo, hi = np.searchsorted(sample_index, offsets[i : i + 2])
            takes.append(sample_index[lo:hi] - offsets[i])
    parts = dask.compute(
        *[
            dask.delayed(_survey_chunk, pure=False)(b, w, t)
            for b, w, t in zip(blocks, weight_blocks, takes, strict=True)
        ]
    )
    survey = {"sample": np.concatenate([p["sample"] for p in parts]), "bad_rows": 0, "max_abs": 0.0}
    for offset, part in zip(offsets, parts, strict=False):
        survey["bad_rows"] += part["bad_rows"]
        if part["first_bad"] is not None and "first_bad" not in survey:
            survey["first_bad"] = (offset + part["first_bad"][0], part["first_bad"][1])
        if part["max_abs"] > survey["max_abs"]:
            survey["max_abs"] = part["max_abs"]
            survey["argmax_abs"] = (offset + int(part["argmax_abs"][0]), int(part["argmax_abs"][1]))
    if weight_blocks[0] is not None:
        survey["sample_weight"] = np.concatenate([p["sample_weight"] for p in parts])
        for key in ("bad_weights", "negative_weights", "positive_weights", "total_weight"):
            survey[key] = sum(p[key] for p in parts)
        for key in ("first_bad_weight", "first_negative_weight"):
            firsts = [
                offset + p[key] for offset, p in zip(offsets, parts, strict=False) if p[key] is not None
            ]
            survey[key] = firsts[0] if firsts else None
    else:
        survey["sample_weight"] = None
    return survey


def _check_survey(survey, weighted, n_components):
    """The checks of :func:`bayes_gmm._validation.check_data` and of sample_weight, from the first pass."""
    if survey["bad_rows"]:
        row, column = survey["first_bad"]
        raise ValueError(
            f"X must contain only finite values; found NaN or infinity in {survey['bad_rows']} row(s), first at "
            f"row {row}, column {column}. Drop or impute those rows before fitting."
        )
    if survey["max_abs"] > MAX_ABS_VALUE:
        row, column = survey["argmax_abs"]
        raise ValueError(
            f"X has values too large for float64 arithmetic: magnitude {survey['max_abs']:.3g} at row {row}, "
            f"column {column} (variances of values beyond {MAX_ABS_VALUE:.0e} overflow). Rescale the data "
            f"first, and scale the results back."
        )
    if not weighted:
        return
    expected = "a 1-D array of finite, non-negative weights (one per row of X)"
    if survey["bad_weights"]:
        raise ValueError(
            f"sample_weight must be {expected}; got {survey['bad_weights']} NaN or infinite weight(s), first at "
            f"index {survey['first_bad_weight']}. Replace them with finite weights, or use 0 to leave a row out."
        )
    if survey["negative_weights"]:
        raise ValueError(
            f"sample_weight must be {expected}; got {survey['negative_weights']} negative weight(s), first at "
            f"index {survey['first_negative_weight']}. A weight counts how many points a row stands for: use 0 "
            f"to leave a row out."
        )
    if survey["positive_weights"] < n_components:
        raise ValueError(
            f"sample_weight must give at least n_components = {n_components} rows a positive weight (one per "
            f"mixture component); got {survey['positive_weights']} positive weight(s). Give more rows a "
            f"weight > 0 or use fewer components."
        )


# -- the passes ------------------------------------------------------------------------------------------


def _chunk_statistics(block, weight, means, prec_chol_full, log_det, log_weights, full_scatter):
    """``(log_lik, nk, sx, sxx)`` of one chunk of rows (the log-likelihood weighted if `weight` is given)."""
    Xt = np.ascontiguousarray(np.asarray(block, dtype=np.float64).T)
    small = [np.require(a, np.float64, ["C", "W"]) for a in (means, prec_chol_full, log_det, log_weights)]
    if weight is None:
        return _chunk_kernel(Xt, *small, full_scatter, _NONE, _NONE)
    weight = np.require(weight, np.float64, ["C", "W"])
    pointwise = np.empty(Xt.shape[1])
    _, nk, sx, sxx = _chunk_kernel(Xt, *small, full_scatter, weight, pointwise)
    return weighted_sum(pointwise, weight), nk, sx, sxx


def _chunk_final(block, weight, weights, means, prec_chol, covariance_type):
    """A chunk's (weighted) log-likelihood and ``sum_i log max_k P(z_i = k | x_i)`` (ICL's term)."""
    log_density, log_resp = log_responsibilities(
        np.asarray(block, dtype=np.float64), weights, means, prec_chol, covariance_type
    )
    log_resp_max = np.max(log_resp, axis=1)
    if weight is None:
        return float(np.sum(log_density)), float(np.sum(log_resp_max))
    weight = np.asarray(weight, dtype=np.float64)
    return weighted_sum(log_density, weight), weighted_sum(log_resp_max, weight)


def _add(*parts):
    """Elementwise sum of tuples of statistics."""
    return tuple(sum(values[1:], start=values[0]) for values in zip(*parts, strict=True))


def _tree_sum(parts):
    """A delayed tree of sums over `parts` (a fixed order, so every scheduler gives the same floats)."""
    while len(parts) > 1:
        parts = [dask.delayed(_add, pure=False)(*parts[i : i + FAN_IN]) for i in range(0, len(parts), FAN_IN)]
    return parts[0]


def _pass(function, blocks, weight_blocks, *args):
    tasks = [
        dask.delayed(function, pure=False)(b, w, *args) for b, w in zip(blocks, weight_blocks, strict=True)
    ]
    (total,) = dask.compute(_tree_sum(tasks))
    return total


def _run_em_dask(
    blocks,
    weight_blocks,
    n_samples,
    n_total,
    weights,
    means,
    covariances,
    *,
    covariance_type,
    max_iter,
    tol,
    reg_covar,
    say,
) -> EMResult:
    """EM over all chunks from one start (the twin of :func:`bayes_gmm.em_baseline._fit._run_em`)."""

    def statistics(*args):
        return _pass(_chunk_statistics, blocks, weight_blocks, *args)

    def report(n_iter, history):
        say(f"EM iteration {n_iter}" + (f" (log-likelihood {history[-1]:.10g})" if history else "") + " ...")

    with one_blas_thread():
        iterations = em_iterations(
            statistics,
            weights,
            means,
            covariances,
            get_structure(covariance_type),
            max_iter=max_iter,
            tol=tol,
            reg_covar=reg_covar,
            n_total=n_total,
            before_iteration=report,
        )
    say("final pass: log-likelihood and ICL ...")
    weights, means, prec_chol = iterations[0], iterations[1], iterations[3]
    final_log_lik, log_resp_max_sum = _pass(
        _chunk_final, blocks, weight_blocks, weights, means, prec_chol, covariance_type
    )
    return finished_result(
        iterations,
        final_log_lik,
        tol=tol,
        covariance_type=covariance_type,
        n_samples=n_samples,
        train_log_resp_max=None,
        train_log_resp_max_sum=log_resp_max_sum,
        total_weight=None if weight_blocks[0] is None else n_total,
    )
