"""Figures for Gaussian-mixture fits: clusters with covariance ellipses, membership uncertainty, fitted
densities, the choice of the number of components, KMeans against a GMM, and pair plots.

Every ``plot_*`` function takes an EM fit (:class:`~bayes_gmm.em_baseline.EMResult`, with the data `X`)
or a Bayesian fit (``xarray.DataTree`` from :func:`bayes_gmm.inference.fit_gmm`, which stores its
data), draws on the Axes it is given (on a new figure when none is), and returns what it drew. Component
``k`` has the same colour in every figure: the Okabe-Ito palette, which stays distinguishable with the
common colour-vision deficiencies. Only matplotlib's object API is used; nothing is closed or shown.

Artists carry a ``gid`` saying what they are (``"points:k=0"``, ``"ellipse:em:k=0:sigma=1"``,
``"ellipse:posterior-draw:k=0:sigma=2"``, ``"density:mean"``, ...), so they can be found again with
``[a for a in ax.get_children() if (a.get_gid() or "").startswith("ellipse:")]``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
from scipy.optimize import linear_sum_assignment

from bayes_gmm._io import atomic_path
from bayes_gmm._validation import check_data, check_n_components
from bayes_gmm.em_baseline import EMResult, fit_em
from bayes_gmm.inference._membership import (
    mean_log_density,
    membership_probabilities,
    points_for_fit,
    posterior_draws,
    weighted_log_densities,
)
from bayes_gmm.inference._start import em_full_covariances

__all__ = [
    "COMPONENT_COLORS",
    "component_colors",
    "plot_clusters",
    "plot_density",
    "plot_k_selection",
    "plot_kmeans_vs_gmm",
    "plot_membership_uncertainty",
    "plot_pairs",
    "save_figure",
]

#: Okabe & Ito (2008) colours, in the order components get them (yellow last: weak on white).
COMPONENT_COLORS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#D55E00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
_POSTERIOR_VARS = ("weights", "means", "covariances")
_MAX_PAIR_FEATURES = 6
_MEMBERSHIP_MAX_DRAWS = 500
_SIGMA = "\N{GREEK SMALL LETTER SIGMA}"
#: The light two thirds of "Blues", so that black data points stay visible on the densest region.
_DENSITY_CMAP = ListedColormap(plt.get_cmap("Blues")(np.linspace(0.0, 0.7, 256)), name="density")


def component_colors(n_components: int) -> list[str]:
    """Colour of each component, the same in every figure of this module.

    The eight Okabe-Ito colours for up to eight components; beyond that matplotlib's ``tab20``
    (not colourblind-safe; that many components are hard to tell apart in any palette).

    Parameters
    ----------
    n_components : int

    Returns
    -------
    list of str
        Hex colours, one per component.
    """
    n_components = check_n_components(n_components)
    if n_components <= len(COMPONENT_COLORS):
        return list(COMPONENT_COLORS[:n_components])
    cmap = plt.get_cmap("tab20")
    return [_hex(cmap(k % cmap.N)) for k in range(n_components)]


def _hex(rgba) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in rgba[:3]))


# -- what a fit provides ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Mixture:
    """A fit reduced to what the figures need; `draws` only for a posterior."""

    fit: object
    source: str
    X: np.ndarray
    X_arg: object
    feature_names: tuple[str, ...]
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    draws: tuple[np.ndarray, np.ndarray, np.ndarray] | None

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @property
    def label(self) -> str:
        if self.source == "em":
            return f"EM fit ({self.fit.covariance_type} covariances)"
        attrs = getattr(self.fit, "attrs", {}) or {}
        method = str(attrs.get("method", "posterior")).upper().replace("_", "-")
        cov = attrs.get("covariance_type")
        return f"Bayesian fit ({method}{f', {cov} covariances' if cov else ''})"

    def thinned_draws(self, max_draws: int | None):
        """Posterior draws evenly thinned to at most `max_draws`; the point estimate as one draw for EM."""
        if self.draws is None:
            return self.weights[None], self.means[None], self.covariances[None]
        return posterior_draws(self.fit, max_draws)

    def membership(self):
        return membership_probabilities(self.fit, self.X_arg, max_draws=_MEMBERSHIP_MAX_DRAWS)


def _mixture(fit, X, *, func: str) -> _Mixture:
    if isinstance(fit, EMResult):
        if X is None:
            raise ValueError(
                f"X is required to plot an EM fit: an EMResult does not store its training data. "
                f"Pass the data, e.g. {func}(em, X)."
            )
        names = _column_names(X, fit.n_features)
        data = check_data(X, n_features=fit.n_features, name="X")
        return _Mixture(
            fit=fit,
            source="em",
            X=data,
            X_arg=data,
            feature_names=names,
            weights=np.asarray(fit.weights, dtype=float),
            means=np.asarray(fit.means, dtype=float),
            covariances=em_full_covariances(fit),
            draws=None,
        )
    posterior = getattr(fit, "posterior", None)
    if posterior is None or any(name not in posterior for name in _POSTERIOR_VARS):
        raise TypeError(
            f"fit must be an EMResult (from bayes_gmm.em_baseline.fit_em) or a DataTree whose "
            f"posterior has {', '.join(_POSTERIOR_VARS)} (from bayes_gmm.inference.fit_gmm); got "
            f"{type(fit).__name__}. Fit the data first, e.g. {func}(fit_em(X, 3), X)."
        )
    data = points_for_fit(fit, X, func=func)
    draws = posterior_draws(fit)
    return _Mixture(
        fit=fit,
        source="posterior",
        X=data,
        X_arg=X,
        feature_names=tuple(str(name) for name in posterior["feature"].to_numpy()),
        weights=draws[0].mean(axis=0),
        means=draws[1].mean(axis=0),
        covariances=draws[2].mean(axis=0),
        draws=draws,
    )


def _column_names(X, n_features: int) -> tuple[str, ...]:
    columns = getattr(X, "columns", None)
    if columns is not None and len(columns) == n_features:
        return tuple(str(c) for c in columns)
    return tuple(f"x{i}" for i in range(n_features))


# -- argument checks ---------------------------------------------------------------------------------------
def _feature_indices(features, names: tuple[str, ...], *, n: int | None, func: str) -> list[int]:
    """Positions of `features` (ints or names) among `names`; exactly `n` of them unless `n` is None."""
    if n is not None and len(names) < n:
        raise ValueError(
            f"{func} needs {n} features, but the data has {len(names)} ({list(names)}). "
            "For one feature use plot_density, which draws a histogram with the fitted density."
        )
    if isinstance(features, str | numbers.Integral):
        features = [features]
    try:
        requested = list(features)
    except TypeError:
        raise ValueError(
            f"features must be a sequence of feature positions or names; got {features!r}. "
            f"Pass e.g. features={tuple(range(min(len(names), n or 2)))}."
        ) from None
    indices = []
    for feature in requested:
        if isinstance(feature, numbers.Integral) and not isinstance(feature, bool):
            if not -len(names) <= feature < len(names):
                raise ValueError(
                    f"features contains position {feature}, but the data has {len(names)} feature(s) "
                    f"{list(names)}. Use positions 0 to {len(names) - 1} or names."
                )
            indices.append(int(feature) % len(names))
        elif str(feature) in names:
            indices.append(names.index(str(feature)))
        else:
            raise ValueError(
                f"features contains {feature!r}, which is not a feature of the fit; the features are "
                f"{list(names)}. Use one of these names or a position."
            )
    if len(set(indices)) != len(indices):
        raise ValueError(f"features must not repeat a feature; got {requested!r}.")
    if n is not None and len(indices) != n:
        raise ValueError(
            f"features must name exactly {n} features for {func}; got {requested!r}. "
            f"Pass e.g. features={tuple(names[:n])}."
        )
    return indices


def _check_sigmas(sigmas) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(sigmas, dtype=object))
    try:
        out = tuple(float(s) for s in values)
    except (TypeError, ValueError):
        out = ()
    if not out or not all(np.isfinite(s) and s > 0 for s in out):
        raise ValueError(
            f"sigmas must be one or more positive numbers (ellipse radii in standard deviations); got "
            f"{sigmas!r}. Pass e.g. sigmas=(1, 2)."
        )
    return out


def _check_int(value, name: str, *, minimum: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}; got {value!r}. Pass e.g. {name}={example}."
        )
    return int(value)


def _check_option(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}. Pass e.g. {name}={choices[0]!r}."
        )
    return value


def _new_axes(ax, *, figsize=(6.4, 4.8)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
        return ax
    if not isinstance(ax, Axes):
        raise TypeError(
            f"ax must be a matplotlib Axes or None; got {type(ax).__name__}. Pass ax=None to create a "
            "figure, or e.g. fig, ax = plt.subplots()."
        )
    return ax


def _set_aspect(ax: Axes, aspect: str) -> None:
    _check_option(aspect, "aspect", ("auto", "equal"))
    if aspect == "equal":
        ax.set_aspect("equal", adjustable="box")


# -- drawing helpers ---------------------------------------------------------------------------------------
def _covariance_ellipse(mean, covariance, n_sigma: float, **kwargs) -> Ellipse:
    """The ellipse ``(x - mean)' inv(covariance) (x - mean) = n_sigma**2`` of a 2-D Gaussian.

    Its semi-axes lie along the eigenvectors of `covariance` with lengths ``n_sigma * sqrt(eigenvalue)``:
    ``n_sigma`` marginal standard deviations along each principal direction (no chi-square quantile).
    """
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(covariance, dtype=float))
    major = eigenvectors[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    width, height = 2.0 * n_sigma * np.sqrt(np.clip(eigenvalues[::-1], 0.0, None))
    return Ellipse(tuple(np.asarray(mean, dtype=float)), width, height, angle=angle, **kwargs)


def _draw_ellipses(ax, means, covariances, pair, sigmas, colors, *, kind: str, **style) -> list[Ellipse]:
    """One ellipse per component and sigma, for the 2x2 marginal covariance of the feature `pair`."""
    idx = np.ix_(pair, pair)
    patches = []
    for k in range(means.shape[0]):
        for n_sigma in sigmas:
            patch = _covariance_ellipse(
                means[k, pair],
                covariances[k][idx],
                n_sigma,
                fill=False,
                edgecolor=colors[k],
                gid=f"ellipse:{kind}:k={k}:sigma={n_sigma:g}",
                **style,
            )
            ax.add_patch(patch)
            patches.append(patch)
    return patches


def _scatter_components(ax, points, labels, colors, *, n_components: int, size=14.0, alpha=0.75, names=None):
    for k in range(n_components):
        mine = labels == k
        ax.scatter(
            points[mine, 0],
            points[mine, 1],
            s=size,
            color=colors[k],
            alpha=alpha,
            edgecolors="white",
            linewidths=0.3,
            zorder=2,
            gid=f"points:k={k}",
            label=(names[k] if names else f"component {k}") + f" (n={int(mine.sum())})",
        )


def _sigma_text(sigmas) -> str:
    return " and ".join(f"{s:g}{_SIGMA}" for s in sigmas)


def _draw_clusters(ax, mix: _Mixture, pair, labels, colors, *, sigmas, n_posterior_draws, em, rng, names):
    points = mix.X[:, pair]
    _scatter_components(ax, points, labels, colors, n_components=mix.n_components, names=names)
    legend_extra = []
    if mix.draws is not None and n_posterior_draws > 0:
        weights, means, covariances = mix.draws
        n_draws = min(n_posterior_draws, weights.shape[0])
        chosen = np.sort(rng.choice(weights.shape[0], size=n_draws, replace=False))
        alpha = float(np.clip(4.0 / n_draws, 0.12, 0.6))
        for s in chosen:
            _draw_ellipses(
                ax, means[s], covariances[s], pair, sigmas, colors, kind="posterior-draw", lw=0.6, alpha=alpha
            )
        legend_extra.append(
            Line2D([], [], color="0.3", lw=0.6, alpha=max(alpha, 0.4), label=f"{n_draws} posterior draws")
        )
    kind = "em" if mix.source == "em" else "posterior-mean"
    _draw_ellipses(ax, mix.means, mix.covariances, pair, sigmas, colors, kind=kind, lw=1.8, zorder=4)
    legend_extra.append(
        Line2D(
            [],
            [],
            color="0.3",
            lw=1.8,
            label=("EM estimate" if mix.source == "em" else "posterior mean") + f", {_sigma_text(sigmas)}",
        )
    )
    if em is not None:
        _draw_ellipses(
            ax, em.means, em_full_covariances(em), pair, sigmas, colors, kind="em", lw=1.4, ls="--", zorder=5
        )
        legend_extra.append(Line2D([], [], color="0.3", lw=1.4, ls="--", label="EM estimate"))
    return legend_extra


def _two_legends(ax, component_handles, style_handles, *, loc1="upper left", loc2="lower right", title1=None):
    first = ax.legend(
        handles=component_handles,
        loc=loc1,
        fontsize="small",
        title=title1,
        title_fontsize="small",
        framealpha=0.85,
    )
    if style_handles:
        ax.add_artist(first)
        ax.legend(handles=style_handles, loc=loc2, fontsize="small", framealpha=0.85)
    return first


def _component_handles(ax) -> list:
    return [c for c in ax.collections if (c.get_gid() or "").startswith("points:")]


# -- public plots ------------------------------------------------------------------------------------------
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
    random_seed : int, numpy.random.Generator or None
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
    mix = _mixture(fit, X, func="plot_clusters")
    pair = _feature_indices(features, mix.feature_names, n=2, func="plot_clusters")
    sigmas = _check_sigmas(sigmas)
    n_posterior_draws = _check_int(n_posterior_draws, "n_posterior_draws", minimum=0, example=30)
    if em is not None:
        if not isinstance(em, EMResult):
            raise TypeError(
                f"em must be an EMResult (from bayes_gmm.em_baseline.fit_em) or None; got {type(em).__name__}."
            )
        if mix.source == "em":
            raise ValueError(
                "em overlays an EM fit on a Bayesian fit, but fit is already an EMResult. Pass the "
                "DataTree as fit, or leave em=None."
            )
        if em.n_features != mix.n_features or em.n_components != mix.n_components:
            raise ValueError(
                f"em must have the fit's {mix.n_components} components and {mix.n_features} features; got "
                f"{em.n_components} components and {em.n_features} features. Fit EM to the same data "
                "with the same number of components."
            )
    ax = _new_axes(ax)
    rng = np.random.default_rng(random_seed)
    labels = mix.membership()["most_probable"].to_numpy()
    colors = component_colors(mix.n_components)
    names = [f"component {k}, weight {w:.2f}" for k, w in enumerate(mix.weights)]
    style = _draw_clusters(
        ax,
        mix,
        pair,
        labels,
        colors,
        sigmas=sigmas,
        n_posterior_draws=n_posterior_draws,
        em=em,
        rng=rng,
        names=names,
    )
    ax.set_xlabel(mix.feature_names[pair[0]])
    ax.set_ylabel(mix.feature_names[pair[1]])
    ax.set_title(f"{mix.label}: {mix.n_components} components")
    _two_legends(ax, _component_handles(ax), style, title1="most probable component")
    _set_aspect(ax, aspect)
    return ax


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
    _check_option(by, "by", ("entropy", "max_probability"))
    mix = _mixture(fit, X, func="plot_membership_uncertainty")
    pair = _feature_indices(features, mix.feature_names, n=2, func="plot_membership_uncertainty")
    ax = _new_axes(ax)
    membership = mix.membership()
    labels = membership["most_probable"].to_numpy()
    values, top, measure = _uncertainty(membership, by, mix.n_components)
    fraction = np.clip(values / top, 0.0, 1.0)
    order = np.argsort(fraction, kind="stable")
    colors = component_colors(mix.n_components)
    face = np.array([to_rgba(colors[k]) for k in labels])
    face[:, 3] = 0.3 + 0.7 * fraction
    ax.scatter(
        mix.X[order, pair[0]],
        mix.X[order, pair[1]],
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
        for k in range(mix.n_components)
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
    ax.set_xlabel(mix.feature_names[pair[0]])
    ax.set_ylabel(mix.feature_names[pair[1]])
    ax.set_title(
        f"{mix.label}: membership uncertainty\n{n_uncertain} of {mix.X.shape[0]} points with max probability < 0.9",
        fontsize="medium",
    )
    _set_aspect(ax, aspect)
    return ax


def _uncertainty_size(fraction: np.ndarray) -> np.ndarray:
    return 8.0 + 140.0 * fraction


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
    mix = _mixture(fit, X, func="plot_density")
    if not 0.0 < interval_prob < 1.0:
        raise ValueError(f"interval_prob must be in (0, 1); got {interval_prob!r}. Use e.g. 0.9.")
    if max_draws is not None:
        max_draws = _check_int(max_draws, "max_draws", minimum=1, example=200)
    if grid_size is not None:
        grid_size = _check_int(grid_size, "grid_size", minimum=10, example=200)
    ax = _new_axes(ax)
    if mix.n_features == 1:
        return _density_1d(
            ax,
            mix,
            show_components,
            interval_prob,
            max_draws,
            grid_size or 512,
            _check_limits(limits, 1),
            bins,
        )
    pair = _feature_indices(features, mix.feature_names, n=2, func="plot_density")
    _density_2d(ax, mix, pair, max_draws, grid_size or 150, _check_limits(limits, 2))
    _set_aspect(ax, aspect)
    return ax


def _density_1d(
    ax, mix: _Mixture, show_components, interval_prob, max_draws, grid_size, limits, bins
) -> Axes:
    x = mix.X[:, 0]
    low, high = limits[0] if limits else _padded_range(x)
    grid = np.linspace(low, high, grid_size)
    weights, means, covariances = mix.thinned_draws(max_draws)
    weighted = np.exp(weighted_log_densities(grid[:, None], weights, means, covariances))
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
    colors = component_colors(mix.n_components)
    if show_components:
        component_mean = weighted.mean(axis=0)
        component_mean[component_mean < 1e-3 * total.mean(axis=0).max()] = np.nan
        for k in range(mix.n_components):
            ax.plot(
                grid,
                component_mean[:, k],
                color=colors[k],
                lw=1.4,
                ls="--",
                gid=f"density:component:k={k}",
                label=f"component {k}, weight {mix.weights[k]:.2f}",
                zorder=4,
            )
    if mix.draws is not None:
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
            label=f"{interval_prob:.0%} pointwise interval ({weights.shape[0]} draws)",
            zorder=2,
        )
    ax.plot(
        grid,
        total.mean(axis=0),
        color="black",
        lw=2.0,
        gid="density:mean",
        label="posterior mean density" if mix.draws is not None else "EM density",
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
    ax.set_xlabel(mix.feature_names[0])
    ax.set_ylabel("density")
    ax.set_title(f"{mix.label}: {mix.n_components} components")
    ax.legend(fontsize="small", framealpha=0.85)
    return ax


def _density_2d(ax, mix: _Mixture, pair, max_draws, grid_size, limits) -> None:
    points = mix.X[:, pair]
    (x_low, x_high), (y_low, y_high) = limits or (_padded_range(points[:, 0]), _padded_range(points[:, 1]))
    xx, yy = np.meshgrid(np.linspace(x_low, x_high, grid_size), np.linspace(y_low, y_high, grid_size))
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    weights, means, covariances = mix.thinned_draws(max_draws)
    means = means[:, :, pair]
    covariances = covariances[:, :, pair][:, :, :, pair]
    log_density = mean_log_density(grid, weights, means, covariances).reshape(xx.shape)
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
        contours, ax=ax, label="log density" + (" (posterior mean)" if mix.draws is not None else "")
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
    ax.set_xlabel(mix.feature_names[pair[0]])
    ax.set_ylabel(mix.feature_names[pair[1]])
    kind = "posterior mean density" if mix.draws is not None else "density"
    ax.set_title(f"{mix.label}\n{kind}, {mix.n_components} components", fontsize="medium")


_K_SERIES = {
    "loo": ("elpd_loo", "se_loo", "PSIS-LOO elpd", "#0072B2", "o"),
    "waic": ("elpd_waic", "se_waic", "WAIC elpd", "#E69F00", "s"),
    "bic": ("em_bic", None, "EM BIC", "#009E73", "o"),
    "aic": ("em_aic", None, "EM AIC", "#CC79A7", "s"),
    "icl": ("em_icl", None, "EM ICL", "#D55E00", "^"),
}


def plot_k_selection(selection, *, ax=None) -> np.ndarray:
    """Compare numbers of components: Bayesian elpd (LOO, WAIC) and EM information criteria against k.

    Left: the expected log pointwise predictive density by PSIS-LOO and WAIC with +-1 standard error
    bars (higher is better). Right: EM's BIC (scikit-learn's sign, lower is better), and AIC and ICL when
    the table has them (columns ``em_aic``, ``em_icl``). The k each criterion picked is circled on its
    curve and named in the legend.

    Parameters
    ----------
    selection : object
        With ``table``, a pandas DataFrame indexed by k (``n_components``) with columns ``elpd_waic``,
        ``se_waic``, ``elpd_loo``, ``se_loo`` and ``em_bic``; and ``picks``, a dict from criterion
        ("waic", "loo", "bic", "aic", "icl") to the chosen k.
    ax : matplotlib.axes.Axes or pair of Axes, optional
        None: a new figure with two panels. A pair: the two panels. One Axes: the elpd on it and the EM
        criteria on a twin y axis.

    Returns
    -------
    ndarray of 2 matplotlib.axes.Axes
        The elpd axes and the EM-criteria axes (the twin when one Axes was given).
    """
    table, picks = _check_selection(selection)
    if ax is None:
        _, axes = plt.subplots(1, 2, figsize=(10.0, 4.2), layout="constrained", sharex=True)
    elif isinstance(ax, Axes):
        axes = np.array([ax, ax.twinx()])
    else:
        axes = np.asarray(ax, dtype=object).ravel()
        if axes.size != 2 or not all(isinstance(a, Axes) for a in axes):
            raise TypeError(
                f"ax must be None, one matplotlib Axes or a pair of Axes; got {ax!r:.80}. Pass ax=None to "
                "create a figure with two panels."
            )
    twin = isinstance(ax, Axes)
    ks = np.asarray(table.index, dtype=int)
    handles = {0: [], 1: []}
    for criterion, (column, se_column, name, color, marker) in _K_SERIES.items():
        if column not in table:
            continue
        panel = 0 if se_column else 1
        target = axes[panel]
        values = table[column].to_numpy(dtype=float)
        offset = 0.06 * (1 if criterion == "waic" else -1) if se_column else 0.0
        pick = picks.get(criterion)
        label = f"{name}" + (f": picks k = {pick}" if pick is not None else "")
        if se_column:
            artist = target.errorbar(
                ks + offset,
                values,
                yerr=table[se_column].to_numpy(dtype=float),
                color=color,
                marker=marker,
                ms=5,
                capsize=3,
                lw=1.4,
                label=label,
            )
            artist.lines[0].set_gid(f"k-selection:{criterion}")
        else:
            (artist,) = target.plot(
                ks, values, color=color, marker=marker, ms=5, lw=1.4, ls="--" if twin else "-", label=label
            )
            artist.set_gid(f"k-selection:{criterion}")
        handles[panel].append(artist)
        if pick is not None and pick in table.index:
            target.plot(
                [pick + offset],
                [float(table.loc[pick, column])],
                ls="",
                marker="o",
                ms=14,
                mfc="none",
                mec=color,
                mew=2.0,
                gid=f"k-selection:pick:{criterion}",
                zorder=5,
            )
    axes[0].set_xticks(ks)
    axes[0].set_xlabel("number of components k")
    axes[0].set_ylabel("elpd (higher is better)")
    axes[1].set_ylabel("EM criterion (lower is better)")
    if twin:
        axes[0].set_title("Choosing k: Bayesian elpd (solid, left) and EM criteria (dashed, right)")
        axes[0].legend(
            handles=handles[0] + handles[1],
            fontsize="small",
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncols=2,
            frameon=False,
        )
    else:
        axes[1].set_xlabel("number of components k")
        axes[0].set_title("Bayesian: expected log predictive density (±1 SE)")
        axes[1].set_title("EM: information criteria")
        for panel in (0, 1):
            if handles[panel]:
                axes[panel].legend(handles=handles[panel], fontsize="small", loc="best")
    return axes


def _check_selection(selection):
    table = getattr(selection, "table", None)
    picks = getattr(selection, "picks", None)
    if table is None or not hasattr(table, "columns") or not isinstance(picks, dict):
        raise TypeError(
            f"selection must have a pandas DataFrame `table` (indexed by k) and a dict `picks`; got "
            f"{type(selection).__name__}. Pass the result of select_k."
        )
    required = ("elpd_waic", "se_waic", "elpd_loo", "se_loo", "em_bic")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(
            f"selection.table must have columns {list(required)}; it lacks {missing} (it has "
            f"{list(table.columns)}). Pass the result of select_k, which computes them."
        )
    if len(table) == 0:
        raise ValueError("selection.table is empty: it has no k to plot. Compare at least one k.")
    return table.sort_index(), picks


def _align_labels(labels: np.ndarray, reference: np.ndarray, n_components: int) -> np.ndarray:
    """Relabel `labels` (0..K-1) so that they agree with `reference` as much as possible."""
    reference_values = np.unique(reference)
    table = np.array(
        [[np.sum((labels == k) & (reference == r)) for r in reference_values] for k in range(n_components)]
    )
    rows, cols = linear_sum_assignment(-table)
    mapping = np.full(n_components, -1)
    for row, col in zip(rows, cols, strict=True):
        if col < n_components:
            mapping[row] = col
    free = iter(sorted(set(range(n_components)) - set(mapping[mapping >= 0].tolist())))
    for k in range(n_components):
        if mapping[k] < 0:
            mapping[k] = next(free)
    return mapping


def plot_kmeans_vs_gmm(
    X,
    n_components: int,
    *,
    labels_true=None,
    covariance_type: str = "full",
    features=(0, 1),
    aspect: str = "auto",
    random_seed=None,
    axes=None,
) -> np.ndarray:
    """Side by side: KMeans clusters and the most probable components of an EM-fitted GMM.

    KMeans cuts space into convex cells around the centres and so favours round clusters of similar
    size; a GMM with full covariances also fits elongated, unequally sized and overlapping clusters.
    The GMM's ellipses (1 and 2 standard deviations) are drawn. Colours are matched between the panels
    (and to `labels_true` when given) so that the same cluster has the same colour.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int
        Number of clusters for both methods.
    labels_true : array-like of shape (n_samples,), optional
        Known labels; each title then gives the adjusted Rand index (1 = perfect, about 0 = chance).
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        The GMM's covariance structure.
    features : pair of int or str, default (0, 1)
        Features to plot when X has more than two (both methods use all features).
    aspect : {"auto", "equal"}, default "auto"
        "equal" when both features are on the same scale.
    random_seed : int or None
        Seeds KMeans (10 starts) and EM (5 starts).
    axes : pair of matplotlib.axes.Axes, optional
        Where to draw; a new figure with two panels when None.

    Returns
    -------
    ndarray of 2 matplotlib.axes.Axes
        KMeans panel, GMM panel. Points have gid ``"points:k=<k>"`` in each.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    n_components = check_n_components(n_components)
    data = check_data(X, min_samples=n_components, name="X")
    names = _column_names(X, data.shape[1])
    pair = _feature_indices(features, names, n=2, func="plot_kmeans_vs_gmm")
    if labels_true is not None:
        labels_true = np.asarray(labels_true)
        if labels_true.shape != (data.shape[0],):
            raise ValueError(
                f"labels_true must have one label per row of X, shape ({data.shape[0]},); got shape "
                f"{labels_true.shape}. Pass the known cluster of each point, or None."
            )
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11.0, 4.8), layout="constrained", sharex=True, sharey=True)
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != 2 or not all(isinstance(a, Axes) for a in axes):
        raise TypeError(f"axes must be None or a pair of matplotlib Axes; got {axes!r:.80}.")
    if isinstance(random_seed, np.random.Generator):
        random_seed = int(random_seed.integers(2**31))
    kmeans = KMeans(n_clusters=n_components, n_init=10, random_state=random_seed).fit(data)
    em = fit_em(data, n_components, covariance_type=covariance_type, n_init=5, random_seed=random_seed)
    gmm_labels = em.predict(data)
    reference = labels_true if labels_true is not None else gmm_labels
    gmm_map = (
        _align_labels(gmm_labels, reference, n_components)
        if labels_true is not None
        else np.arange(n_components)
    )
    km_map = _align_labels(kmeans.labels_, reference, n_components)
    palette = component_colors(n_components)

    km_labels = km_map[kmeans.labels_]
    _scatter_components(
        axes[0],
        data[:, pair],
        km_labels,
        palette,
        n_components=n_components,
        names=[f"cluster {k}" for k in range(n_components)],
    )
    centres = np.empty_like(kmeans.cluster_centers_)
    centres[km_map] = kmeans.cluster_centers_
    axes[0].scatter(
        centres[:, pair[0]],
        centres[:, pair[1]],
        marker="X",
        s=120,
        c=palette,
        edgecolors="black",
        linewidths=1.2,
        zorder=4,
        gid="kmeans:centres",
        label="centres",
    )
    mix = _mixture(em, data, func="plot_kmeans_vs_gmm")
    colors = [palette[gmm_map[k]] for k in range(n_components)]
    style = _draw_clusters(
        axes[1],
        mix,
        pair,
        gmm_labels,
        colors,
        sigmas=(1, 2),
        n_posterior_draws=0,
        em=None,
        rng=None,
        names=None,
    )
    for collection in _component_handles(axes[1]):
        k = int(collection.get_gid().split("=")[1])
        collection.set_gid(f"points:k={gmm_map[k]}")
        collection.set_label(f"cluster {gmm_map[k]} (n={int(np.sum(gmm_labels == k))})")
    titles = ["KMeans", f"GMM, EM ({covariance_type} covariances)"]
    if labels_true is not None:
        titles = [
            f"{title}: ARI = {adjusted_rand_score(labels_true, labels):.3f}"
            for title, labels in zip(titles, (km_labels, gmm_map[gmm_labels]), strict=True)
        ]
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel(names[pair[0]])
        _set_aspect(ax, aspect)
    axes[0].set_ylabel(names[pair[1]])
    axes[0].legend(fontsize="small", loc="best", framealpha=0.85)
    gmm_handles = sorted(_component_handles(axes[1]), key=lambda c: c.get_gid())
    axes[1].legend(handles=gmm_handles + style, fontsize="small", loc="best", framealpha=0.85)
    return axes


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
    random_seed : int, numpy.random.Generator or None
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
    mix = _mixture(fit, X, func="plot_pairs")
    if features is None:
        if mix.n_features > _MAX_PAIR_FEATURES:
            raise ValueError(
                f"plot_pairs draws a d x d grid, readable for at most {_MAX_PAIR_FEATURES} features; the "
                f"data has {mix.n_features}. Choose some with features=, e.g. "
                f"features={list(mix.feature_names[:4])}."
            )
        chosen = list(range(mix.n_features))
    else:
        chosen = _feature_indices(features, mix.feature_names, n=None, func="plot_pairs")
        if len(chosen) > _MAX_PAIR_FEATURES:
            raise ValueError(
                f"features names {len(chosen)} features; plot_pairs is readable for at most "
                f"{_MAX_PAIR_FEATURES}. Pass fewer, e.g. features={[mix.feature_names[i] for i in chosen[:4]]}."
            )
    if len(chosen) < 2:
        raise ValueError(
            f"plot_pairs needs at least 2 features; got {len(chosen)}. For one feature use plot_density."
        )
    sigmas = _check_sigmas(sigmas)
    n_posterior_draws = _check_int(n_posterior_draws, "n_posterior_draws", minimum=0, example=30)
    d = len(chosen)
    if fig is None:
        fig = plt.figure(figsize=(2.3 * d + 0.8, 2.3 * d + 0.4), layout="constrained")
    elif not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure or None; got {type(fig).__name__}.")
    axes = fig.subplots(d, d, sharex="col", squeeze=False)
    rng = np.random.default_rng(random_seed)
    labels = mix.membership()["most_probable"].to_numpy()
    colors = component_colors(mix.n_components)
    style = []
    for i, row in enumerate(chosen):
        for j, col in enumerate(chosen):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                edges = np.histogram_bin_edges(mix.X[:, row], bins="auto")
                for k in range(mix.n_components):
                    ax.hist(
                        mix.X[labels == k, row],
                        bins=edges,
                        color=colors[k],
                        alpha=0.5,
                        histtype="stepfilled",
                        edgecolor=colors[k],
                        gid=f"hist:k={k}",
                    )
                ax.tick_params(labelleft=False, left=False)
                ax.set_title(mix.feature_names[row], fontsize="medium")
            else:
                if j > 0:
                    ax.sharey(axes[i, 0])
                    ax.tick_params(labelleft=False)
                style = _draw_clusters(
                    ax,
                    mix,
                    [col, row],
                    labels,
                    colors,
                    sigmas=sigmas,
                    n_posterior_draws=n_posterior_draws,
                    em=None,
                    rng=rng,
                    names=None,
                )
                for collection in _component_handles(ax):
                    collection.set_sizes([6.0])
                if j == 0:
                    ax.set_ylabel(mix.feature_names[row])
            if i == d - 1:
                ax.set_xlabel(mix.feature_names[col])
    handles = [
        Line2D(
            [], [], ls="", marker="o", color=colors[k], label=f"component {k}, weight {mix.weights[k]:.2f}"
        )
        for k in range(mix.n_components)
    ]
    fig.legend(
        handles=handles + style,
        loc="upper right",
        fontsize="small",
        title="most probable component",
        title_fontsize="small",
        frameon=False,
    )
    fig.suptitle(f"{mix.label}: {mix.n_components} components, pairwise marginals")
    return axes


def save_figure(fig, path, dpi: int = 150) -> Path:
    """Save a figure so that `path` is never left half-written (temporary file, then rename).

    Parameters
    ----------
    fig : matplotlib.figure.Figure, Axes or array of Axes
        What to save (for Axes, the figure they are on), as returned by the ``plot_*`` functions.
    path : str or path-like
        Target file; its suffix picks the format (``.png``, ``.pdf``, ``.svg``, ...). Parent folders
        are created.
    dpi : int, default 150
        Resolution for raster formats.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    figure = _figure_of(fig)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    supported = figure.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"path must end in a format matplotlib can write ({', '.join('.' + f for f in sorted(supported))}); "
            f"got {str(path)!r}. Add a suffix, e.g. {path.with_suffix('.png').name!r}."
        )
    dpi = _check_int(dpi, "dpi", minimum=1, example=150)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


def _figure_of(obj) -> Figure:
    if isinstance(obj, Figure):
        return obj
    if isinstance(obj, Axes):
        return obj.figure
    if isinstance(obj, np.ndarray) and obj.size and isinstance(obj.flat[0], Axes):
        return obj.flat[0].figure
    raise TypeError(
        f"fig must be a matplotlib Figure, Axes or array of Axes (what the plot_* functions return); got "
        f"{type(obj).__name__}."
    )
