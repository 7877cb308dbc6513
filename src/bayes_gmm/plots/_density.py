"""plot_density: the fitted mixture density with the data (a curve in 1-D, log-density contours in 2-D)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap

from bayes_gmm.covariance import weighted_log_densities
from bayes_gmm.inference._draws import FitDraws, fit_draws
from bayes_gmm.inference._membership import mean_log_density
from bayes_gmm.plots._checks import check_int, feature_indices
from bayes_gmm.plots._fit import caveat_title, fit_label, thinned
from bayes_gmm.plots._style import component_colors, new_axes, set_aspect

#: The light two thirds of "Blues", so that black data points stay visible on the densest region.
_DENSITY_CMAP = ListedColormap(plt.get_cmap("Blues")(np.linspace(0.0, 0.7, 256)), name="density")


def _padded_range(values: np.ndarray, pad: float = 0.1) -> tuple[float, float]:
    low, high = float(np.min(values)), float(np.max(values))
    width = high - low if high > low else max(abs(low), 1.0)
    return low - pad * width, high + pad * width


def _check_limits(limits, n: int):
    if limits is None:
        return None
    arr = np.asarray(limits, dtype=float) if np.size(limits) == 2 * n else None
    if arr is not None:
        arr = arr.reshape(n, 2)
    if arr is None or not np.all(np.isfinite(arr)) or np.any(arr[:, 1] <= arr[:, 0]):
        example = "(low, high)" if n == 1 else "((x_low, x_high), (y_low, y_high))"
        raise ValueError(
            f"limits must be {example} with low < high, finite; got {limits!r}. Leave limits=None to "
            "use the data range padded by 10%."
        )
    return [tuple(row) for row in arr]


def plot_density(
    fit,
    X=None,
    *,
    ax=None,
    features=(0, 1),
    show_components: bool = True,
    interval_prob: float = 0.9,
    max_draws: int | None = 200,
    grid_size: int | None = None,
    limits=None,
    bins=None,
    aspect: str = "auto",
) -> Axes:
    """Plot the fitted mixture density with the data.

    For one feature: a histogram of the data (as a density) with the fitted density; for a Bayesian fit
    the posterior mean density ``E[p(x | theta)]`` over draws and its pointwise `interval_prob` band, for
    an EM fit the density at the estimate. With `show_components`, the weighted component densities
    ``w_k N(x | mu_k, sigma_k^2)`` (posterior means) are drawn dashed in the component colours.

    For two or more features: filled contours of the log of that density for the chosen pair (the
    marginal mixture of the two features), with the data on top.

    Parameters
    ----------
    fit : EMResult or xarray.DataTree
    X : array-like of shape (n_samples, n_features), optional
        Required for an EM fit; by default the stored data of a Bayesian fit.
    ax : matplotlib.axes.Axes, optional
    features : pair of int or str, default (0, 1)
        The pair of features for data with two or more features (ignored for one).
    show_components : bool, default True
        One feature only: also draw the weighted component densities.
    interval_prob : float, default 0.9
        One feature, Bayesian fit: probability of the pointwise equal-tailed band over draws.
    max_draws : int or None, default 200
        Posterior draws used (evenly thinned); None for all.
    grid_size : int, optional
        Grid points (per axis in 2-D); default 512 for one feature, 150 for two.
    limits : (low, high) or ((x_low, x_high), (y_low, y_high)), optional
        Range of the density grid and of the axes; default the data range padded by 10%.
    bins : int, sequence or str, optional
        Histogram bins (as numpy.histogram_bin_edges takes them), one feature only; default
        ``2 sqrt(n)`` bins, between 10 and 60.
    aspect : {"auto", "equal"}, default "auto"
        Two features only.

    Returns
    -------
    matplotlib.axes.Axes
        One feature: lines with gid ``"density:mean"`` (the density curve) and
        ``"density:component:k=<k>"``, the band ``"density:band"``. Two features: a filled contour set
        with gid ``"density:contours"`` and the points ``"points:data"``.
    """
    draws = fit_draws(fit, X, func="plot_density")
    if not 0.0 < interval_prob < 1.0:
        raise ValueError(f"interval_prob must be in (0, 1); got {interval_prob!r}. Use e.g. 0.9.")
    if max_draws is not None:
        max_draws = check_int(max_draws, "max_draws", minimum=1, example=200)
    if grid_size is not None:
        grid_size = check_int(grid_size, "grid_size", minimum=10, example=200)
    ax = new_axes(ax)
    thin = thinned(draws, X, max_draws, func="plot_density")
    if draws.n_features == 1:
        return _density_1d(
            ax,
            draws,
            thin,
            show_components,
            interval_prob,
            grid_size or 512,
            _check_limits(limits, 1),
            bins,
        )
    pair = feature_indices(features, draws.feature_names, n=2, func="plot_density")
    _density_2d(ax, draws, thin, pair, grid_size or 150, _check_limits(limits, 2))
    set_aspect(ax, aspect)
    return ax


def _density_1d(
    ax, draws: FitDraws, thin: FitDraws, show_components, interval_prob, grid_size, limits, bins
) -> Axes:
    """Histogram of the one feature with the density of the (`thin`ned) draws; `draws` for the labels."""
    x = draws.X[:, 0]
    low, high = limits[0] if limits else _padded_range(x)
    grid = np.linspace(low, high, grid_size)
    weighted = np.exp(weighted_log_densities(grid[:, None], thin.weights, thin.means, thin.covariances))
    total = weighted.sum(axis=2)
    if bins is None:
        bins = int(np.clip(round(2.0 * np.sqrt(x.size)), 10, 60))
    ax.hist(
        x,
        bins=bins,
        density=True,
        histtype="step",
        color="0.45",
        lw=1.0,
        label=f"data (n={x.size})",
        zorder=1,
    )
    colors = component_colors(draws.n_components)
    if show_components:
        component_mean = weighted.mean(axis=0)
        component_mean[component_mean < 1e-3 * total.mean(axis=0).max()] = np.nan
        weights = draws.point_estimate()[0]
        for k in range(draws.n_components):
            ax.plot(
                grid,
                component_mean[:, k],
                color=colors[k],
                lw=1.4,
                ls="--",
                gid=f"density:component:k={k}",
                label=f"component {k}, weight {weights[k]:.2f}",
                zorder=4,
            )
    if draws.source == "posterior":
        tail = (1.0 - interval_prob) / 2.0
        lower, upper = np.quantile(total, [tail, 1.0 - tail], axis=0)
        ax.fill_between(
            grid,
            lower,
            upper,
            color="0.25",
            alpha=0.25,
            lw=0,
            gid="density:band",
            label=f"{interval_prob:.0%} pointwise interval ({thin.n_draws} draws)",
            zorder=2,
        )
    ax.plot(
        grid,
        total.mean(axis=0),
        color="black",
        lw=2.0,
        gid="density:mean",
        label="posterior mean density" if draws.source == "posterior" else "EM density",
        zorder=3,
    )
    ax.set_xlim(low, high)
    top = ax.get_ylim()[1]
    if x.size <= 500:
        ax.plot(
            x, np.full_like(x, -0.03 * top), ls="", marker="|", ms=7, color="0.3", alpha=0.7, gid="data:rug"
        )
    ax.set_ylim(-0.06 * top, top)
    ax.axhline(0.0, color="0.5", lw=0.6, zorder=0)
    ax.set_xlabel(draws.feature_names[0])
    ax.set_ylabel("density")
    caveat_title(ax.set_title(f"{fit_label(draws)}: {draws.n_components} components"), draws.fit)
    ax.legend(fontsize="small", framealpha=0.85)
    return ax


def _density_2d(ax, draws: FitDraws, thin: FitDraws, pair, grid_size, limits) -> None:
    """Log-density contours of the (`thin`ned) draws for the feature `pair`, with the points of `draws`."""
    points = draws.X[:, pair]
    (x_low, x_high), (y_low, y_high) = limits or (_padded_range(points[:, 0]), _padded_range(points[:, 1]))
    xx, yy = np.meshgrid(np.linspace(x_low, x_high, grid_size), np.linspace(y_low, y_high, grid_size))
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    means = thin.means[:, :, pair]
    covariances = thin.covariances[:, :, pair][:, :, :, pair]
    log_density = mean_log_density(grid, thin.weights, means, covariances).reshape(xx.shape)
    top = float(np.max(log_density))
    levels = np.linspace(np.floor(top) - 10.0, np.ceil(top), 12)
    contours = ax.contourf(xx, yy, log_density, levels=levels, cmap=_DENSITY_CMAP, extend="min", zorder=1)
    contours.set_gid("density:contours")
    ax.contour(
        xx,
        yy,
        log_density,
        levels=levels,
        colors="white",
        linewidths=0.4,
        linestyles="solid",
        alpha=0.6,
        zorder=1,
    )
    ax.figure.colorbar(
        contours, ax=ax, label="log density" + (" (posterior mean)" if draws.source == "posterior" else "")
    )
    ax.scatter(
        points[:, 0],
        points[:, 1],
        s=6,
        color="black",
        alpha=0.6,
        lw=0,
        zorder=2,
        gid="points:data",
        label="data",
    )
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_xlabel(draws.feature_names[pair[0]])
    ax.set_ylabel(draws.feature_names[pair[1]])
    kind = "posterior mean density" if draws.source == "posterior" else "density"
    title = ax.set_title(f"{fit_label(draws)}\n{kind}, {draws.n_components} components", fontsize="medium")
    caveat_title(title, draws.fit)
