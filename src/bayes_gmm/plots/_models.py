"""plot_model_search: BIC (or ICL) of every covariance model against the number of components."""

from __future__ import annotations

import numpy as np

from bayes_gmm.plots._checks import check_option
from bayes_gmm.plots._style import new_axes

#: mclust's 14 models in its plotting order, each with a colour, marker and line style of its own.
_STYLES = {
    "EII": ("#0072B2", "o", "-"),
    "VII": ("#0072B2", "s", "--"),
    "EEI": ("#E69F00", "o", "-"),
    "VEI": ("#E69F00", "s", "--"),
    "EVI": ("#E69F00", "^", ":"),
    "VVI": ("#E69F00", "D", "-."),
    "EEE": ("#009E73", "o", "-"),
    "VEE": ("#009E73", "s", "--"),
    "EVE": ("#009E73", "^", ":"),
    "VVE": ("#009E73", "D", "-."),
    "EEV": ("#CC79A7", "o", "-"),
    "VEV": ("#CC79A7", "s", "--"),
    "EVV": ("#CC79A7", "^", ":"),
    "VVV": ("#D55E00", "D", "-"),
}


def model_style(name: str) -> tuple[str, str, str]:
    """Colour, marker and line style of a covariance model in every figure (scikit-learn's names too)."""
    from bayes_gmm.covariance import get_structure

    return _STYLES.get(get_structure(name).mclust_name, ("#000000", "x", "-"))


def plot_model_search(search, *, criterion: str = "bic", ax=None):
    """Compare covariance models and numbers of components, like mclust's BIC plot.

    One line per covariance model (colour by orientation family: spherical and diagonal, then shared,
    then per-component orientations), the criterion against K (scikit-learn's sign: lower is better; mclust
    plots the negative). The best (model, K) is circled and named in the title. Fits that failed (every
    start collapsed) are gaps.

    Parameters
    ----------
    search : ModelSearch
        From :func:`bayes_gmm.em_baseline.search_models`.
    criterion : {"bic", "icl"}, default "bic"
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = getattr(search, "table", None)
    if table is None or not {"bic", "icl"} <= set(table.columns):
        raise TypeError(
            f"search must be what search_models returned (a ModelSearch); got {type(search).__name__}. "
            "Run search = search_models(X) first."
        )
    criterion = check_option(criterion, "criterion", ("bic", "icl"))
    ax = new_axes(ax, figsize=(7.5, 4.8))
    for model in dict.fromkeys(table.index.get_level_values("covariance_type")):
        rows = table.xs(model, level="covariance_type")
        color, marker, style = model_style(model)
        ax.plot(
            rows.index.to_numpy(dtype=int),
            rows[criterion].to_numpy(dtype=float),
            color=color,
            marker=marker,
            ls=style,
            ms=4,
            lw=1.2,
            label=model,
            gid=f"model-search:{model}",
        )
    best = search.best(1, criterion)
    (best_model, best_k), best_value = best.index[0], best[criterion].iloc[0]
    ax.plot([best_k], [best_value], "o", ms=14, mfc="none", mec="black", mew=1.5, gid="model-search:best")
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.set_title(f"best by {criterion.upper()}: {best_model}, K = {best_k}")
    ax.set_xticks(np.unique(table.index.get_level_values("n_components").to_numpy(dtype=int)))
    ax.legend(ncol=2, fontsize="small", frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax
