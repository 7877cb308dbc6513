"""plot_pairs: every pair of features with the marginal clusters, and each feature's histograms."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bayes_gmm._validation import random_generator
from bayes_gmm.inference._draws import fit_draws
from bayes_gmm.plots._checks import check_int, check_sigmas, feature_indices
from bayes_gmm.plots._ellipses import draw_clusters
from bayes_gmm.plots._fit import caveat_title, fit_label, membership_of
from bayes_gmm.plots._style import component_colors, component_handles

_MAX_PAIR_FEATURES = 6


def plot_pairs(
    fit,
    X=None,
    *,
    fig=None,
    features=None,
    sigmas=(2,),
    n_posterior_draws: int = 0,
    random_seed=None,
) -> np.ndarray:
    """Pair plot: every pair of features with the marginal clusters, and each feature's histograms.

    Below the diagonal, panel (i, j) scatters feature j against feature i coloured by most probable
    component, with the marginal covariance ellipses (EM estimate or posterior mean, and optionally
    posterior draws). On the diagonal, histograms of each feature per most probable component. The
    panels above the diagonal are left empty; the legend goes there.

    Parameters
    ----------
    fit : EMResult or xarray.DataTree
    X : array-like of shape (n_samples, n_features), optional
        Required for an EM fit; by default the stored data of a Bayesian fit.
    fig : matplotlib.figure.Figure, optional
        An empty figure to draw on; a new one when None.
    features : sequence of int or str, optional
        The features to show (2 to 6), all by default.
    sigmas : sequence of float, default (2,)
        Ellipse radii in standard deviations.
    n_posterior_draws : int, default 0
        Bayesian fit: posterior draws whose ellipses are also drawn in each panel.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seed for choosing the posterior draws.

    Returns
    -------
    ndarray of matplotlib.axes.Axes, shape (d, d)
        ``axes[i, j]`` for i > j are the scatter panels; the upper triangle is switched off.

    Raises
    ------
    ValueError
        For fewer than 2 or more than 6 features (choose some with `features`).
    """
    draws = fit_draws(fit, X, func="plot_pairs")
    if features is None:
        if draws.n_features > _MAX_PAIR_FEATURES:
            raise ValueError(
                f"plot_pairs draws a d x d grid, readable for at most {_MAX_PAIR_FEATURES} features; the "
                f"data has {draws.n_features}. Choose some with features=, e.g. "
                f"features={list(draws.feature_names[:4])}."
            )
        chosen = list(range(draws.n_features))
    else:
        chosen = feature_indices(features, draws.feature_names, n=None, func="plot_pairs")
        if len(chosen) > _MAX_PAIR_FEATURES:
            raise ValueError(
                f"features names {len(chosen)} features; plot_pairs is readable for at most "
                f"{_MAX_PAIR_FEATURES}. Pass fewer, e.g. features={[draws.feature_names[i] for i in chosen[:4]]}."
            )
    if len(chosen) < 2:
        raise ValueError(
            f"plot_pairs needs at least 2 features; got {len(chosen)}. For one feature use plot_density."
        )
    sigmas = check_sigmas(sigmas)
    n_posterior_draws = check_int(n_posterior_draws, "n_posterior_draws", minimum=0, example=30)
    d = len(chosen)
    if fig is None:
        fig = plt.figure(figsize=(2.3 * d + 0.8, 2.3 * d + 0.4), layout="constrained")
    elif not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure or None; got {type(fig).__name__}.")
    axes = fig.subplots(d, d, sharex="col", squeeze=False)
    rng = random_generator(random_seed)
    labels = membership_of(draws, X)["most_probable"].to_numpy()
    colors = component_colors(draws.n_components)
    style = []
    for i, row in enumerate(chosen):
        for j, col in enumerate(chosen):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                edges = np.histogram_bin_edges(draws.X[:, row], bins="auto")
                for k in range(draws.n_components):
                    ax.hist(
                        draws.X[labels == k, row],
                        bins=edges,
                        color=colors[k],
                        alpha=0.5,
                        histtype="stepfilled",
                        edgecolor=colors[k],
                        gid=f"hist:k={k}",
                    )
                ax.tick_params(labelleft=False, left=False)
                ax.set_title(draws.feature_names[row], fontsize="medium")
            else:
                if j > 0:
                    ax.sharey(axes[i, 0])
                    ax.tick_params(labelleft=False)
                style = draw_clusters(
                    ax,
                    draws,
                    [col, row],
                    labels,
                    colors,
                    sigmas=sigmas,
                    n_posterior_draws=n_posterior_draws,
                    em=None,
                    rng=rng,
                    names=None,
                )
                for collection in component_handles(ax):
                    collection.set_sizes([6.0])
                if j == 0:
                    ax.set_ylabel(draws.feature_names[row])
            if i == d - 1:
                ax.set_xlabel(draws.feature_names[col])
    weights = draws.point_estimate()[0]
    handles = [
        Line2D([], [], ls="", marker="o", color=colors[k], label=f"component {k}, weight {weights[k]:.2f}")
        for k in range(draws.n_components)
    ]
    axes[0, -1].legend(  # in the empty upper triangle (switched off), clear of the title
        handles=handles + style,
        loc="upper right",
        fontsize="small",
        title="most probable component",
        title_fontsize="small",
        frameon=False,
    )
    caveat_title(
        fig.suptitle(f"{fit_label(draws)}: {draws.n_components} components, pairwise marginals"), draws.fit
    )
    return axes
