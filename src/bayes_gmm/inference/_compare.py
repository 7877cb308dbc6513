"""Bayesian posterior summaries next to the EM estimates of the same parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayes_gmm._validation import default_feature_names
from bayes_gmm.em_baseline import EMResult
from bayes_gmm.inference._draws import check_fit


def compare_with_em(idata, em: EMResult) -> pd.DataFrame:
    """Posterior mean and SD of every weight, mean and standard deviation beside the EM estimate.

    The posterior must be in the EM fit's labelling: pass the `em` that was given to :func:`fit_gmm`
    (``fit_gmm(X, k, em=em)``), to which every draw was relabelled.

    Parameters
    ----------
    idata : xarray.DataTree
        A fit from :func:`bayes_gmm.inference.fit_gmm`.
    em : EMResult
        The EM fit of the same data and number of components.

    Returns
    -------
    pandas.DataFrame
        One row per parameter (``parameter`` e.g. ``"means[1, waiting]"``), columns ``posterior_mean``,
        ``posterior_sd``, ``em``, ``difference`` (posterior mean - EM) and ``difference_in_sd``
        (difference / posterior SD: values beyond about 2 deserve a look).

    Raises
    ------
    TypeError
        If `idata` is not a DataTree or `em` not an EMResult (the two swapped, say), before any computation.
    ValueError
        If `idata` is not shaped like a fit_gmm result, or `em` has another number of components or
        features, or other feature names than the posterior.
    """
    _check_arguments(idata, em)
    posterior = idata.posterior
    if posterior.sizes["chain"] * posterior.sizes["draw"] < 2:
        raise ValueError(
            "idata must hold at least 2 posterior draws to give a posterior SD; got 1. Take more draws."
        )
    components = posterior["component"].to_numpy()
    features = [str(f) for f in posterior["feature"].to_numpy()]
    if em.n_components != len(components) or em.n_features != len(features):
        raise ValueError(
            f"em must have the fit's {len(components)} components and {len(features)} features; got "
            f"{em.n_components} and {em.n_features}. Pass the EM fit used to start fit_gmm."
        )
    named = tuple(features) != default_feature_names(len(features))
    if named and em.feature_names is not None and em.feature_names != tuple(features):
        raise ValueError(
            f"em must have the posterior's features {features}, in that order; got {list(em.feature_names)}. "
            f"Pass the EM fit used to start fit_gmm (fit_gmm(X, k, em=em)), fitted to the same columns."
        )
    draws = {
        "weights": posterior["weights"].transpose(..., "component").to_numpy(),
        "means": posterior["means"].transpose(..., "component", "feature").to_numpy(),
        "sd": np.sqrt(
            np.diagonal(
                posterior["covariances"].transpose(..., "component", "feature", "feature_cov").to_numpy(),
                axis1=-2,
                axis2=-1,
            )
        ),
    }
    point = {
        "weights": np.asarray(em.weights),
        "means": np.asarray(em.means),
        "sd": np.sqrt(np.diagonal(em.full_covariances(), axis1=-2, axis2=-1)),
    }
    rows = []
    for name, values in draws.items():
        flat = values.reshape(-1, *values.shape[2:])
        for index in np.ndindex(*flat.shape[1:]):
            label = ", ".join([str(components[index[0]]), *(features[i] for i in index[1:])])
            samples = flat[(slice(None), *index)]
            rows.append(
                {
                    "parameter": f"{name}[{label}]",
                    "posterior_mean": samples.mean(),
                    "posterior_sd": samples.std(ddof=1),
                    "em": point[name][index],
                }
            )
    table = pd.DataFrame(rows)
    table["difference"] = table["posterior_mean"] - table["em"]
    # A parameter fixed by the model (the weight of a single component) has SD 0 and no difference.
    sd = table["posterior_sd"].where(table["posterior_sd"] != 0, np.inf)
    table["difference_in_sd"] = table["difference"] / sd
    return table


def _check_arguments(idata, em) -> None:
    """TypeError or ValueError, naming the parameter, unless `idata` is a fit_gmm result and `em` an EMResult."""
    if isinstance(idata, EMResult) and isinstance(em, xr.DataTree):
        raise TypeError(
            "compare_with_em takes the Bayesian fit first and the EM fit second; got an EMResult as idata and "
            "a DataTree as em. Swap them: compare_with_em(idata, em)."
        )
    example = "compare_with_em(fit_gmm(X, k, em=em), em)"
    check_fit(idata, func="compare_with_em", em_allowed=False, name="idata", example=example)
    if not isinstance(em, EMResult):
        raise TypeError(
            f"em must be an EMResult from fit_em (the one given to fit_gmm as em=...); got "
            f"{'None' if em is None else f'a {type(em).__name__}: {em!r:.60}'}. Pass it, e.g. "
            f"em = fit_em(X, k); {example}."
        )
