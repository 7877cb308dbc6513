"""Every call into ArviZ lives here, so that a move to ArviZ 1.x is a change to this one module."""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr


def convergence_diagnostics(posterior: xr.Dataset, var_names) -> dict[str, float]:
    """Worst R-hat (rank-normalised, split) and smallest bulk/tail ESS over `var_names`.

    Needs at least two chains. Entries ArviZ cannot compute (e.g. a constant) are ignored; if none can be
    computed the value is NaN, which never passes a threshold check.
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
