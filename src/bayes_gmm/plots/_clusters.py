"""plot_clusters: the data by most probable component, with covariance ellipses."""

from __future__ import annotations

from matplotlib.axes import Axes

from bayes_gmm._validation import random_generator
from bayes_gmm.em_baseline import EMResult
from bayes_gmm.inference._draws import fit_draws
from bayes_gmm.plots._checks import check_int, check_sigmas, feature_indices
from bayes_gmm.plots._ellipses import draw_clusters
from bayes_gmm.plots._fit import caveat_title, fit_label, membership_of
from bayes_gmm.plots._style import component_colors, component_handles, new_axes, set_aspect, two_legends


def plot_clusters(
    fit,
    X=None,
    *,
    ax=None,
    features=(0, 1),
    n_posterior_draws: int = 30,
    sigmas=(1, 2),
    em: EMResult | None = None,
    aspect: str = "auto",
    random_seed=None,
) -> Axes:
    """Scatter the data coloured by most probable component, with covariance ellipses.

    For an EM fit the ellipses are those of the maximum-likelihood estimate. For a Bayesian fit they are
    those of the posterior mean (bold) and of `n_posterior_draws` posterior draws (thin and transparent),
    so the spread of the thin ellipses shows how uncertain each cluster's location, size and shape are.
    With more than two features the chosen pair is plotted with the marginal ellipses (the 2x2
    sub-covariance).

    Parameters
    ----------
    fit : EMResult or xarray.DataTree
        An EM fit (:func:`bayes_gmm.em_baseline.fit_em`) or a Bayesian fit
        (:func:`bayes_gmm.inference.fit_gmm`).
    X : array-like of shape (n_samples, n_features), optional
        The points to plot; required for an EM fit, by default the stored data of a Bayesian fit.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    features : pair of int or str, default (0, 1)
        The two features (positions or names) on the x and y axes.
    n_posterior_draws : int, default 30
        Posterior draws whose ellipses are drawn (chosen at random without replacement; ignored for an
        EM fit). 0 draws only the posterior mean.
    sigmas : sequence of float, default (1, 2)
        Ellipse radii in standard deviations along each principal axis (``sigma * sqrt(eigenvalue)``).
    em : EMResult, optional
        An EM fit of the same data to overlay as dashed ellipses on a Bayesian fit.
    aspect : {"auto", "equal"}, default "auto"
        "equal" draws one unit the same length on both axes; use it only when both features are on the
        same scale (then the ellipses show the true shape of the clusters).
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seed for choosing the posterior draws.

    Returns
    -------
    matplotlib.axes.Axes
        Scatter collections have gid ``"points:k=<k>"``, ellipses ``"ellipse:<kind>:k=<k>:sigma=<s>"``
        with kind ``em``, ``posterior-mean`` or ``posterior-draw``.

    Raises
    ------
    ValueError
        If `X` is missing for an EM fit, has the wrong number of features, or an option is out of range.
    """
    draws = fit_draws(fit, X, func="plot_clusters")
    pair = feature_indices(features, draws.feature_names, n=2, func="plot_clusters")
    sigmas = check_sigmas(sigmas)
    n_posterior_draws = check_int(n_posterior_draws, "n_posterior_draws", minimum=0, example=30)
    if em is not None:
        if not isinstance(em, EMResult):
            raise TypeError(
                f"em must be an EMResult (from bayes_gmm.em_baseline.fit_em) or None; got {type(em).__name__}."
            )
        if draws.source == "em":
            raise ValueError(
                "em overlays an EM fit on a Bayesian fit, but fit is already an EMResult. Pass the "
                "DataTree as fit, or leave em=None."
            )
        if em.n_features != draws.n_features or em.n_components != draws.n_components:
            raise ValueError(
                f"em must have the fit's {draws.n_components} components and {draws.n_features} features; got "
                f"{em.n_components} components and {em.n_features} features. Fit EM to the same data "
                "with the same number of components."
            )
    ax = new_axes(ax)
    rng = random_generator(random_seed)
    labels = membership_of(draws, X)["most_probable"].to_numpy()
    colors = component_colors(draws.n_components)
    names = [f"component {k}, weight {w:.2f}" for k, w in enumerate(draws.point_estimate()[0])]
    style = draw_clusters(
        ax,
        draws,
        pair,
        labels,
        colors,
        sigmas=sigmas,
        n_posterior_draws=n_posterior_draws,
        em=em,
        rng=rng,
        names=names,
    )
    ax.set_xlabel(draws.feature_names[pair[0]])
    ax.set_ylabel(draws.feature_names[pair[1]])
    caveat_title(ax.set_title(f"{fit_label(draws)}: {draws.n_components} components"), draws.fit)
    two_legends(ax, component_handles(ax), style, title1="most probable component")
    set_aspect(ax, aspect)
    return ax
