"""Every call into ArviZ 1 and every reach into a fit's ``xarray.DataTree`` lives here.

A fit is what PyMC 6 returns: an ``xarray.DataTree`` whose children follow the InferenceData schema
(``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data``, and our ``membership``). The
helpers below also accept what ``arviz.from_netcdf`` loads from disk, which is the same type.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from bayes_gmm._validation import check_positive_int, random_generator

#: Default number of observations whose pointwise log-likelihood :func:`loo_subsampled` computes.
DEFAULT_LOO_SUBSAMPLE = 1000


def has_group(fit, name: str) -> bool:
    """Whether the DataTree `fit` has a child group `name` (e.g. ``"log_likelihood"``)."""
    return isinstance(fit, xr.DataTree) and name in fit.children


def group_dataset(fit, name: str) -> xr.Dataset:
    """The group `name` of `fit` as a plain ``xarray.Dataset`` (a copy-free view of its variables)."""
    return fit[name].to_dataset()


def set_group(fit: xr.DataTree, name: str, dataset: xr.Dataset) -> None:
    """Add or replace the group `name` of `fit`, e.g. the membership probabilities beside the posterior."""
    fit[name] = xr.DataTree(dataset)


def convergence_diagnostics(posterior, var_names) -> dict[str, float]:
    """Worst R-hat (rank-normalised, split) and smallest bulk/tail ESS over `var_names`.

    `posterior` is a Dataset or DataTree node with ``chain`` and ``draw`` dimensions; needs at least two
    chains. Entries ArviZ cannot compute (e.g. a constant) are ignored; if none can be computed the value
    is NaN, which never passes a threshold check.
    """
    if isinstance(posterior, xr.DataTree):
        posterior = posterior.to_dataset()
    posterior = posterior[[v for v in var_names if v in posterior]]
    with warnings.catch_warnings():
        # A parameter fixed by the model (the weight of a single component) has no defined R-hat.
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        rhat = az.rhat(posterior)
        ess_bulk = az.ess(posterior, method="bulk")
        ess_tail = az.ess(posterior, method="tail")
    return {
        "rhat_max": _worst(rhat, np.nanmax),
        "ess_bulk_min": _worst(ess_bulk, np.nanmin),
        "ess_tail_min": _worst(ess_tail, np.nanmin),
    }


def _worst(dataset: xr.Dataset, reduce) -> float:
    values = [np.asarray(v.values, dtype=float).ravel() for v in dataset.data_vars.values()]
    values = np.concatenate(values) if values else np.array([np.nan])
    return float(reduce(values)) if np.isfinite(values).any() else float("nan")


def loo(fit) -> dict:
    """PSIS-LOO of the pointwise log-likelihood: elpd (total and pointwise), its SE, p_loo, Pareto k.

    ``n_high_pareto_k`` counts observations whose Pareto k exceeds ArviZ's sample-size-dependent
    threshold (``good_k``, at most 0.7), where the importance-sampling estimate is unreliable.
    """
    _refuse_weighted(fit, "loo")
    with warnings.catch_warnings():
        # The count of high Pareto k values is returned; ArviZ's generic warning would only repeat it.
        warnings.filterwarnings("ignore", message=".*Pareto.*", category=UserWarning)
        result = az.loo(fit, pointwise=True)
    pareto_k = np.asarray(result.pareto_k, dtype=float)
    good_k = float(result.good_k) if result.good_k is not None else 0.7
    return {
        "elpd_loo": float(result.elpd),
        "se_loo": float(result.se),
        "p_loo": float(result.p),
        "pointwise": np.asarray(result.elpd_i, dtype=float),
        "pareto_k": pareto_k,
        "good_k": good_k,
        "n_high_pareto_k": int(np.sum(pareto_k > good_k)),
    }


def compare(fits: dict):
    """ArviZ's PSIS-LOO comparison table (pandas DataFrame, unrounded): rank, elpd, elpd_diff, weight, se, dse."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*", category=UserWarning)
        return az.compare(fits, round_to="none")


def parameter_summary(fit, var_names, *, ci_prob: float = 0.9):
    """ArviZ's summary table: mean, sd, equal-tailed interval, MCSE, bulk/tail ESS and R-hat per parameter."""
    kind = "all" if fit.posterior.sizes["chain"] > 1 else "stats"
    with warnings.catch_warnings():
        # A parameter fixed by the model (one component's weight) has no defined R-hat.
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        return az.summary(fit, var_names=list(var_names), ci_prob=ci_prob, kind=kind, round_to="none")


def to_netcdf(fit, path) -> None:
    """Write the fit to a netCDF file (callers make it atomic); ``arviz.from_netcdf`` reads it back."""
    fit.to_netcdf(str(path), engine="h5netcdf")


def _refuse_weighted(fit, func: str) -> None:
    if (
        isinstance(fit, xr.DataTree)
        and not has_group(fit, "log_likelihood")
        and has_group(fit, "constant_data")
    ):
        if "sample_weight" in fit["constant_data"]:
            raise ValueError(
                f"{func} needs the pointwise log-likelihood of the observations, and this is a weighted fit "
                f"(e.g. fit_coreset_gmm): its weighted points are no held-out observations, so none is stored. "
                f"Estimate the elpd on the full data with loo_subsampled(fit, X) instead."
            )


def loo_subsampled(fit, X=None, *, observations=DEFAULT_LOO_SUBSAMPLE, random_seed=None) -> dict:
    """PSIS-LOO on large data from a subsample of the observations (ArviZ's ``loo_subsample``).

    The pointwise log-likelihood over all posterior draws is computed only for `observations` rows
    drawn without replacement, never for all n, and none needs to be stored in the fit. The elpd of all
    n rows is the difference estimator of Magnusson et al. (2019, "Bayesian leave-one-out
    cross-validation for large data", ICML): the log predictive density at the posterior-mean parameters
    (one pass over the rows) approximates every row's elpd, and the subsample corrects it; its SE has a
    part from the subsampling (``subsampling_se``) that shrinks as `observations` grows.

    Parameters
    ----------
    fit : xarray.DataTree
        A Bayesian fit (:func:`bayes_gmm.inference.fit_gmm` or ``fit_coreset_gmm``).
    X : array-like of shape (n_samples, n_features), optional
        The observations; default the fit's stored data. Required for a coreset fit (whose stored data
        are the coreset points): its posterior is then taken for the full-data posterior, which is as good
        an approximation as the coreset posterior is (see ``fit_coreset_gmm``).
    observations : int or array of int, default 1000
        Size of the subsample (at most n), or the indices of the rows to use.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds the choice of rows.

    Returns
    -------
    dict
        ``elpd_loo`` (estimate for all n rows), ``se_loo`` (its SE, including subsampling),
        ``subsampling_se``, ``p_loo``, ``n_data_points``, ``subsample_size``, ``observations`` (the row
        indices used), ``good_k`` and ``n_high_pareto_k`` (in the subsample), and ``n_rows_evaluated``
        (rows whose log-likelihood was computed for every draw: the subsample).
    """
    from bayes_gmm.inference._draws import fit_draws  # _draws imports this module

    if X is None and isinstance(fit, xr.DataTree) and "coreset_size" in fit.attrs:
        raise ValueError(
            "X is required for a coreset fit: its stored observed_data are the coreset points, not the data. "
            "Pass the full data, e.g. loo_subsampled(fit, X)."
        )
    draws = fit_draws(fit, X, func="loo_subsampled", em_allowed=False)
    n_rows = draws.X.shape[0]
    indices = _subsample_indices(observations, n_rows, random_seed)
    chains, n_draws = fit.posterior.sizes["chain"], fit.posterior.sizes["draw"]
    pointwise = _PointwiseLogLikelihood(draws, chains, n_draws)
    lazy = indexing.LazilyIndexedArray(pointwise)
    tree = xr.DataTree.from_dict(
        {
            "posterior": fit.posterior.to_dataset(),
            "observed_data": xr.Dataset({"obs": ("obs_id", np.arange(n_rows))}),
            "log_likelihood": xr.Dataset({"obs": (("chain", "draw", "obs_id"), lazy)}),
        }
    )

    def point_log_likelihood(observed, data):  # log p(x_i | posterior-mean parameters), all rows
        from bayes_gmm.inference._membership import mean_log_density

        post = data.posterior
        params = [post[name].to_numpy()[None] for name in ("weights", "means", "covariances")]
        return xr.DataArray(mean_log_density(draws.X, *params), dims=observed.dims, coords=observed.coords)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*", category=UserWarning)
        result = az.loo_subsample(
            tree,
            observations=indices,
            var_name="obs",
            method="plpd",
            log_lik_fn=point_log_likelihood,
            pointwise=True,
        )
    pareto_k = np.asarray(result.pareto_k, dtype=float)[indices]
    good_k = float(result.good_k) if result.good_k is not None else 0.7
    return {
        "elpd_loo": float(result.elpd),
        "se_loo": float(result.se),
        "subsampling_se": float(result.subsampling_se),
        "p_loo": float(result.p),
        "n_data_points": int(result.n_data_points),
        "subsample_size": int(result.subsample_size),
        "observations": indices,
        "good_k": good_k,
        "n_high_pareto_k": int(np.sum(pareto_k > good_k)),
        "n_rows_evaluated": pointwise.rows_computed,
    }


def _subsample_indices(observations, n_rows: int, random_seed) -> np.ndarray:
    if np.ndim(observations) == 0:
        size = check_positive_int(observations, "observations", minimum=2)
        if size > n_rows:
            raise ValueError(
                f"observations must be at most the number of rows ({n_rows}); got {size}. Use a smaller "
                f"subsample, or loo(fit) for the full PSIS-LOO."
            )
        return np.sort(random_generator(random_seed).choice(n_rows, size, replace=False))
    indices = np.asarray(observations)
    if (
        indices.ndim != 1
        or indices.size < 2
        or not np.issubdtype(indices.dtype, np.integer)
        or indices.min() < 0
        or indices.max() >= n_rows
        or np.unique(indices).size != indices.size
    ):
        raise ValueError(
            f"observations must be an int or distinct row indices in [0, {n_rows}) (at least 2); got "
            f"{observations!r:.80}. Pass e.g. observations=1000."
        )
    return np.sort(indices)


class _PointwiseLogLikelihood(BackendArray):
    """The (chain, draw, obs_id) pointwise log-likelihood, computed only for the rows that are indexed.

    Wrapped in xarray's lazy indexing, so that ``isel(obs_id=rows)`` evaluates ``log p(x_i | theta_s)`` for
    those rows and every draw; nothing is computed or stored for the others.
    """

    def __init__(self, draws, chains: int, n_draws: int):
        self.draws = draws
        self.shape = (chains, n_draws, draws.X.shape[0])
        self.dtype = np.dtype(np.float64)
        self.rows_computed = 0
        self._last = None

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._get)

    def _get(self, key: tuple):
        from scipy.special import logsumexp

        from bayes_gmm.covariance import weighted_log_densities
        from bayes_gmm.inference._membership import _chunks

        d = self.draws
        chain_idx, draw_idx, row_idx = (np.arange(size)[k] for size, k in zip(self.shape, key, strict=True))
        rows = np.atleast_1d(row_idx)
        if self._last is None or not np.array_equal(
            self._last[0], rows
        ):  # ArviZ reads the subsample repeatedly
            self.rows_computed += rows.size
            points = d.X[rows]
            per_draw = np.concatenate(
                [
                    logsumexp(
                        weighted_log_densities(points, d.weights[c], d.means[c], d.covariances[c]), axis=-1
                    )
                    for c in _chunks(d.n_draws, rows.size, d.n_components, d.n_features)
                ]
            ).reshape(self.shape[0], self.shape[1], rows.size)
            self._last = (rows, per_draw)
        per_draw = self._last[1]
        values = per_draw[np.ix_(np.atleast_1d(chain_idx), np.atleast_1d(draw_idx), np.arange(rows.size))]
        dropped = tuple(i for i, k in enumerate((chain_idx, draw_idx, row_idx)) if np.ndim(k) == 0)
        return values.squeeze(axis=dropped) if dropped else values
