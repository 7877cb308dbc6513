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


def plot_trace(fit, var_names):
    """ArviZ's trace plot (arviz-plots, matplotlib), components overlaid; returns the Figure.

    A variable with a ``feature`` dimension gets one row per feature, so that features on different
    scales (minutes and seconds, say) do not squash each other's traces.
    """
    panels = {}
    posterior = fit.posterior.to_dataset()
    for name in var_names:
        variable = posterior[name]
        if "feature" in variable.dims:
            for feature in variable["feature"].to_numpy():
                panels[f"{name}[{feature}]"] = variable.sel(feature=feature, drop=True)
        else:
            panels[name] = variable
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(panels)})
    collection = az.plot_trace_dist(
        tree,
        compact=True,
        kind="kde",
        backend="matplotlib",
        figure_kwargs={"figsize": (10, 2.2 * len(panels))},
    )
    return collection.viz["figure"].item()
