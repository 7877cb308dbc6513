"""Covariance ellipses and the clusters figure's layers (points, ellipses of estimates and draws),
drawn by plot_clusters, plot_kmeans_vs_gmm and plot_pairs."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse

from bayes_gmm.inference._draws import FitDraws

#: Greek sigma, for the ellipse radii in legends.
SIGMA = "\N{GREEK SMALL LETTER SIGMA}"


def covariance_ellipse(mean, covariance, n_sigma: float, **kwargs) -> Ellipse:
    """The ellipse ``(x - mean)' inv(covariance) (x - mean) = n_sigma**2`` of a 2-D Gaussian.

    Its semi-axes lie along the eigenvectors of `covariance` with lengths ``n_sigma * sqrt(eigenvalue)``:
    ``n_sigma`` marginal standard deviations along each principal direction (no chi-square quantile).
    """
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(covariance, dtype=float))
    major = eigenvectors[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    width, height = 2.0 * n_sigma * np.sqrt(np.clip(eigenvalues[::-1], 0.0, None))
    return Ellipse(tuple(np.asarray(mean, dtype=float)), width, height, angle=angle, **kwargs)


def draw_ellipses(ax, means, covariances, pair, sigmas, colors, *, kind: str, **style) -> list[Ellipse]:
    """One ellipse per component and sigma, for the 2x2 marginal covariance of the feature `pair`."""
    idx = np.ix_(pair, pair)
    patches = []
    for k in range(means.shape[0]):
        for n_sigma in sigmas:
            patch = covariance_ellipse(
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


def scatter_components(ax, points, labels, colors, *, n_components: int, size=14.0, alpha=0.75, names=None):
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


def sigma_text(sigmas) -> str:
    return " and ".join(f"{s:g}{SIGMA}" for s in sigmas)


def draw_clusters(ax, draws: FitDraws, pair, labels, colors, *, sigmas, n_posterior_draws, em, rng, names):
    """Points by `labels`, the ellipses of the estimate (EM) or posterior mean, of `n_posterior_draws`
    random posterior draws, and of `em` dashed; returns legend handles for the ellipse styles."""
    points = draws.X[:, pair]
    scatter_components(ax, points, labels, colors, n_components=draws.n_components, names=names)
    legend_extra = []
    if draws.source == "posterior" and n_posterior_draws > 0:
        n_draws = min(n_posterior_draws, draws.n_draws)
        chosen = np.sort(rng.choice(draws.n_draws, size=n_draws, replace=False))
        alpha = float(np.clip(4.0 / n_draws, 0.12, 0.6))
        for s in chosen:
            draw_ellipses(
                ax,
                draws.means[s],
                draws.covariances[s],
                pair,
                sigmas,
                colors,
                kind="posterior-draw",
                lw=0.6,
                alpha=alpha,
            )
        legend_extra.append(
            Line2D([], [], color="0.3", lw=0.6, alpha=max(alpha, 0.4), label=f"{n_draws} posterior draws")
        )
    _, means, covariances = draws.point_estimate()
    kind = "em" if draws.source == "em" else "posterior-mean"
    draw_ellipses(ax, means, covariances, pair, sigmas, colors, kind=kind, lw=1.8, zorder=4)
    legend_extra.append(
        Line2D(
            [],
            [],
            color="0.3",
            lw=1.8,
            label=("EM estimate" if draws.source == "em" else "posterior mean") + f", {sigma_text(sigmas)}",
        )
    )
    if em is not None:
        draw_ellipses(
            ax, em.means, em.full_covariances(), pair, sigmas, colors, kind="em", lw=1.4, ls="--", zorder=5
        )
        legend_extra.append(Line2D([], [], color="0.3", lw=1.4, ls="--", label="EM estimate"))
    return legend_extra
