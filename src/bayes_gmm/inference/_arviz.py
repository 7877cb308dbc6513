"""Every call into ArviZ lives here, so that a move to ArviZ 1.x is a change to this one module."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import xarray as xr


def convergence_diagnostics(posterior: xr.Dataset, var_names) -> dict[str, float]:
    """Worst R-hat (rank-normalised, split) and smallest bulk/tail ESS over `var_names`.

    Needs at least two chains. Entries ArviZ cannot compute (e.g. a constant) are ignored; if none can be
    computed the value is NaN, which never passes a threshold check.
    """
    var_names = [v for v in var_names if v in posterior]
    with warnings.catch_warnings():
        # A parameter fixed by the model (the weight of a single component) has no defined R-hat.
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        rhat = az.rhat(posterior, var_names=var_names)
        ess_bulk = az.ess(posterior, var_names=var_names, method="bulk")
        ess_tail = az.ess(posterior, var_names=var_names, method="tail")
    return {
        "rhat_max": _worst(rhat, np.nanmax),
        "ess_bulk_min": _worst(ess_bulk, np.nanmin),
        "ess_tail_min": _worst(ess_tail, np.nanmin),
    }


def _worst(dataset: xr.Dataset, reduce) -> float:
    values = [np.asarray(v.values, dtype=float).ravel() for v in dataset.data_vars.values()]
    values = np.concatenate(values) if values else np.array([np.nan])
    return float(reduce(values)) if np.isfinite(values).any() else float("nan")


def loo(idata) -> dict:
    """PSIS-LOO of the pointwise log-likelihood: elpd (total and pointwise), its SE, p_loo, Pareto k.

    ``n_high_pareto_k`` counts observations whose Pareto k exceeds ArviZ's sample-size-dependent
    threshold (``good_k``, at most 0.7), where the importance-sampling estimate is unreliable.
    """
    with warnings.catch_warnings():
        # The count of high Pareto k values is returned; ArviZ's generic warning would only repeat it.
        warnings.filterwarnings("ignore", message=".*Pareto k.*", category=UserWarning)
        result = az.loo(idata, pointwise=True)
    pareto_k = np.asarray(result["pareto_k"], dtype=float)
    good_k = float(result.get("good_k", 0.7))
    return {
        "elpd_loo": float(result["elpd_loo"]),
        "se_loo": float(result["se"]),
        "p_loo": float(result["p_loo"]),
        "pointwise": np.asarray(result["loo_i"], dtype=float),
        "pareto_k": pareto_k,
        "good_k": good_k,
        "n_high_pareto_k": int(np.sum(pareto_k > good_k)),
    }


def compare(fits: dict, ic: str = "loo"):
    """ArviZ's model comparison table (pandas DataFrame): rank, elpd, elpd_diff, stacking weight, se, dse."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto k.*", category=UserWarning)
        # ArviZ 0.23 calls a pandas method that pandas 3 deprecates; nothing for our users to act on.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return az.compare(fits, ic=ic)


def parameter_summary(idata, var_names, *, hdi_prob: float = 0.9):
    """ArviZ's summary table: mean, sd, HDI bounds, MCSE, bulk/tail ESS and R-hat per parameter."""
    kind = "all" if idata.posterior.sizes["chain"] > 1 else "stats"
    with warnings.catch_warnings():
        # A parameter fixed by the model (one component's weight) has no defined R-hat.
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        return az.summary(idata, var_names=list(var_names), hdi_prob=hdi_prob, kind=kind)


def to_netcdf(idata, path) -> None:
    """Write InferenceData to a netCDF file (callers make it atomic)."""
    idata.to_netcdf(str(path))


def plot_trace(idata, var_names):
    """ArviZ's trace plot, components overlaid; returns the Figure.

    A variable with a ``feature`` dimension gets one row per feature, so that features on different
    scales (minutes and seconds, say) do not squash each other's traces.
    """
    panels = {}
    for name in var_names:
        variable = idata.posterior[name]
        if "feature" in variable.dims:
            for feature in variable["feature"].to_numpy():
                panels[f"{name}[{feature}]"] = variable.sel(feature=feature, drop=True)
        else:
            panels[name] = variable
    axes = az.plot_trace(xr.Dataset(panels), compact=True, figsize=(10, 2.2 * len(panels)))
    figure = np.ravel(axes)[0].figure
    figure.tight_layout()
    return figure


def attach_group(idata, name: str, dataset: xr.Dataset) -> None:
    """Add (or replace) a group of `idata`, e.g. the membership probabilities beside the posterior."""
    if name in idata.groups():
        setattr(idata, name, dataset)
    else:
        idata.add_groups({name: dataset})
