"""plot_trace: ArviZ's trace plot of a Bayesian fit, in the components' colours, with a legend."""

from __future__ import annotations

import arviz as az
import xarray as xr
from matplotlib.figure import Figure

from bayes_gmm.inference._draws import fit_draws
from bayes_gmm.plots._fit import caveat_title, fit_label
from bayes_gmm.plots._style import component_colors

#: Height of one row (one variable, or one feature of a variable) of the figure, in inches.
ROW_HEIGHT = 2.2


def plot_trace(fit, var_names=("weights", "means")) -> Figure:
    """Trace plot of a Bayesian fit: each variable's marginal densities (left) and draws (right).

    ArviZ's ``plot_trace_dist`` (arviz-plots, matplotlib) with the components overlaid, each in its
    colour of the other figures (:func:`~bayes_gmm.plots.component_colors`), each chain in a line style of
    its own (:func:`chain_linestyles`, distinct for any number of chains), and legends of the components
    and of the chains. A variable with a ``feature`` dimension gets one row per
    feature, so that features on different scales (minutes and seconds, say) do not squash each other's
    traces. A fit that did not converge gets its failed checks as a red title.

    Parameters
    ----------
    fit : xarray.DataTree
        A Bayesian fit (:func:`bayes_gmm.inference.fit_gmm`).
    var_names : sequence of str, default ("weights", "means")
        Posterior variables with a ``component`` dimension ("weights", "means", "covariances").

    Returns
    -------
    matplotlib.figure.Figure
    """
    draws = fit_draws(fit, func="plot_trace", em_allowed=False)
    posterior = fit.posterior.to_dataset()
    if isinstance(var_names, str):
        var_names = [var_names]
    unknown = [name for name in var_names if name not in posterior or "component" not in posterior[name].dims]
    if unknown or not var_names:
        raise ValueError(
            f"var_names must name posterior variables with a component dimension; got {list(var_names)!r}. "
            f"Use e.g. var_names=('weights', 'means')."
        )
    panels = {}
    for name in var_names:
        variable = posterior[name]
        others = [dim for dim in variable.dims if dim not in ("chain", "draw", "component")]
        if others:  # one row per feature (and per feature pair of a covariance)
            stacked = variable.stack(_entry=others)
            for index in range(stacked.sizes["_entry"]):
                entry = stacked.isel(_entry=index)
                label = ",".join(str(entry[dim].item()) for dim in others)
                panels[f"{name}[{label}]"] = entry.drop_vars(["_entry", *others])
        else:
            panels[name] = variable
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(panels)})
    collection = az.plot_trace_dist(
        tree,
        compact=True,
        kind="kde",
        backend="matplotlib",
        aes={"color": ["component"], "linestyle": ["chain"]},
        # arviz-plots wants 3 colours or more; component k takes the k-th, as in every figure
        color=component_colors(max(posterior.sizes["component"], 3)),
        linestyle=chain_linestyles(max(posterior.sizes["chain"], 3)),
        # Constrained layout keeps the axis labels, the legend and the caveat inside the figure.
        figure_kwargs={"figsize": (10, ROW_HEIGHT * len(panels)), "layout": "constrained"},
    )
    collection.add_legend("component")
    if posterior.sizes["chain"] > 1:
        collection.add_legend("chain", visual_kwargs={"color": "0.3"}, loc="lower right")
    figure = collection.viz["figure"].item()
    caveat_title(figure.suptitle(f"Trace plot: {fit_label(draws)}"), fit)
    return figure


#: matplotlib's named line styles, the first chains' (solid, dashed, dotted, dash-dot).
NAMED_LINESTYLES = ("-", "--", ":", "-.")


def chain_linestyles(n_chains: int) -> list:
    """One distinct line style per chain: the named ones, then dash-dot patterns with one more dot each
    (matplotlib's own cycle has 4 and would repeat)."""
    extra = [(0, (6, 2) + (1, 2) * dots) for dots in range(2, n_chains - len(NAMED_LINESTYLES) + 2)]
    return [*NAMED_LINESTYLES, *extra][: max(n_chains, 1)]
