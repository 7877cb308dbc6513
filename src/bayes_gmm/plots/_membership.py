"""plot_membership_uncertainty: the data by most probable component, sized by how uncertain that is."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D

from bayes_gmm.inference._draws import fit_draws
from bayes_gmm.plots._checks import check_option, feature_indices
from bayes_gmm.plots._fit import caveat_title, fit_label, membership_of
from bayes_gmm.plots._style import component_colors, new_axes, set_aspect


def _uncertainty(membership, by: str, n_components: int):
    if by == "entropy":
        values = membership["entropy"].to_numpy()
        return values, max(np.log(n_components), 1e-12), "entropy (nats)"
    values = 1.0 - membership["max_probability"].to_numpy()
    return values, max(1.0 - 1.0 / n_components, 1e-12), "1 \N{MINUS SIGN} max probability"


def plot_membership_uncertainty(
    fit, X=None, *, ax=None, features=(0, 1), by: str = "entropy", aspect: str = "auto"
) -> Axes:
    """Scatter the data coloured by most probable component, sized and shaded by how uncertain that is.

    Uncertain points are drawn large, opaque, with a black edge and on top; certain ones small and
    faint. Sizes are on an absolute scale (0 to the largest possible uncertainty for the number of
    components), so figures of different fits compare. For a Bayesian fit the membership probabilities
    are posterior means over draws (:func:`bayes_gmm.inference.membership_probabilities`).

    Parameters
    ----------
    fit : EMResult or xarray.DataTree
    X : array-like of shape (n_samples, n_features), optional
        Required for an EM fit; by default the stored data of a Bayesian fit.
    ax : matplotlib.axes.Axes, optional
    features : pair of int or str, default (0, 1)
    by : {"entropy", "max_probability"}, default "entropy"
        Uncertainty measure: the entropy of the membership probabilities in nats (0 to log K), or
        ``1 - max_k P(z_i = k)`` (0 to 1 - 1/K).
    aspect : {"auto", "equal"}, default "auto"

    Returns
    -------
    matplotlib.axes.Axes
        The points are one collection with gid ``"points:uncertainty"``, ordered from most to least
        certain.
    """
    check_option(by, "by", ("entropy", "max_probability"))
    draws = fit_draws(fit, X, func="plot_membership_uncertainty")
    pair = feature_indices(features, draws.feature_names, n=2, func="plot_membership_uncertainty")
    ax = new_axes(ax)
    membership = membership_of(draws, X)
    labels = membership["most_probable"].to_numpy()
    values, top, measure = _uncertainty(membership, by, draws.n_components)
    fraction = np.clip(values / top, 0.0, 1.0)
    order = np.argsort(fraction, kind="stable")
    colors = component_colors(draws.n_components)
    face = np.array([to_rgba(colors[k]) for k in labels])
    face[:, 3] = 0.3 + 0.7 * fraction
    ax.scatter(
        draws.X[order, pair[0]],
        draws.X[order, pair[1]],
        s=_uncertainty_size(fraction[order]),
        c=face[order],
        edgecolors=[(0, 0, 0, a) for a in np.clip(2.0 * fraction[order], 0.0, 1.0)],
        linewidths=0.8,
        gid="points:uncertainty",
        zorder=2,
    )
    component_handles = [
        Line2D(
            [], [], ls="", marker="o", color=colors[k], label=f"component {k} (n={int((labels == k).sum())})"
        )
        for k in range(draws.n_components)
    ]
    levels = [0.1, 0.5, 1.0]
    size_handles = [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            markersize=np.sqrt(_uncertainty_size(np.array([f])))[0],
            markerfacecolor=(0.5, 0.5, 0.5, 0.3 + 0.7 * f),
            markeredgecolor=(0, 0, 0, min(2 * f, 1.0)),
            label=f"{f * top:.2f}" + (" (maximum)" if f == 1.0 else ""),
        )
        for f in levels
    ]
    first = ax.legend(
        handles=component_handles,
        loc="upper left",
        fontsize="small",
        title="most probable",
        title_fontsize="small",
    )
    ax.add_artist(first)
    n_uncertain = int(np.sum(membership["max_probability"].to_numpy() < 0.9))
    ax.legend(
        handles=size_handles,
        loc="lower right",
        fontsize="small",
        title=measure,
        title_fontsize="small",
        labelspacing=1.0,
        borderpad=0.8,
    )
    ax.set_xlabel(draws.feature_names[pair[0]])
    ax.set_ylabel(draws.feature_names[pair[1]])
    title = ax.set_title(
        f"{fit_label(draws)}: membership uncertainty\n{n_uncertain} of {draws.X.shape[0]} points with max probability < 0.9",
        fontsize="medium",
    )
    caveat_title(title, draws.fit)
    set_aspect(ax, aspect)
    return ax


def _uncertainty_size(fraction: np.ndarray) -> np.ndarray:
    return 8.0 + 140.0 * fraction
