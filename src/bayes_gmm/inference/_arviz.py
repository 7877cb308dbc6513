"""Every call into ArviZ lives here, so that a move to ArviZ 1.x is a change to this one module."""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

from bayes_gmm._io import atomic_path


def convergence_diagnostics(posterior: xr.Dataset, var_names) -> dict[str, float]:
    """Worst R-hat (rank-normalised, split) and smallest bulk/tail ESS over `var_names`.

    With a single chain or fewer than 4 draws R-hat is undefined and reported as NaN-free ``inf``-safe
    values: R-hat 1.0 is never claimed without the data to support it.
    """
    var_names = [v for v in var_names if v in posterior]
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


def summary(idata, var_names=None, **kwargs):
    """ArviZ's summary table (pandas DataFrame) of the posterior."""
    return az.summary(idata, var_names=var_names, **kwargs)


def from_dict(**groups):
    """Build InferenceData from dicts of arrays (``posterior=..., sample_stats=...``, dims/coords kwargs)."""
    return az.from_dict(**groups)


def waic(idata, var_name: str):
    """ArviZ's WAIC (``ELPDData``) on the log scale, pointwise values included."""
    return az.waic(idata, var_name=var_name, pointwise=True, scale="log")


def loo(idata, var_name: str):
    """ArviZ's PSIS-LOO (``ELPDData``) on the log scale, pointwise values and Pareto k included."""
    return az.loo(idata, var_name=var_name, pointwise=True, scale="log")


def compare(idatas: dict, ic: str, var_name: str):
    """ArviZ's model comparison table (ranking, elpd differences, stacking weights)."""
    return az.compare(idatas, ic=ic, var_name=var_name, scale="log")


def to_netcdf_atomic(idata, path) -> None:
    """Write InferenceData to netCDF so that `path` is either complete or untouched."""
    with atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf")


def from_netcdf(path):
    """Load InferenceData written by :func:`to_netcdf_atomic`."""
    return az.from_netcdf(str(path))
