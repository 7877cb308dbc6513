"""Figures for Gaussian-mixture fits: clusters with covariance ellipses, membership uncertainty, fitted
densities, the choice of the number of components and of the covariance model, KMeans against a GMM, pair
plots, and trace plots of a Bayesian fit's draws.

Every ``plot_*`` function takes an EM fit (:class:`~bayes_gmm.em_baseline.EMResult`, with the data `X`)
or a Bayesian fit (``xarray.DataTree`` from :func:`bayes_gmm.inference.fit_gmm`, which stores its
data), draws on the Axes it is given (on a new figure when none is), and returns what it drew. Component
``k`` has the same colour in every figure: the Okabe-Ito palette, which stays distinguishable with the
common colour-vision deficiencies. Only matplotlib's object API is used; nothing is closed or shown.

A figure of a fit that did not converge (its verdict, :func:`bayes_gmm.inference.fit_verdict`) carries the
failed checks in red above its title (``"NOT CONVERGED: R-hat 1.246 > 1.01; ..."``, gid
``"caveat:not-converged"``); ``plot_k_selection`` draws such fits hollow and grey and names them there.

Artists carry a ``gid`` saying what they are (``"points:k=0"``, ``"ellipse:em:k=0:sigma=1"``,
``"ellipse:posterior-draw:k=0:sigma=2"``, ``"density:mean"``, ...), so they can be found again with
``[a for a in ax.get_children() if (a.get_gid() or "").startswith("ellipse:")]``.
"""

from __future__ import annotations

from bayes_gmm.plots._clusters import plot_clusters
from bayes_gmm.plots._density import plot_density
from bayes_gmm.plots._kmeans import plot_kmeans_vs_gmm
from bayes_gmm.plots._membership import plot_membership_uncertainty
from bayes_gmm.plots._models import plot_model_search
from bayes_gmm.plots._pairs import plot_pairs
from bayes_gmm.plots._save import save_figure
from bayes_gmm.plots._selection import plot_k_selection
from bayes_gmm.plots._style import COMPONENT_COLORS, component_colors
from bayes_gmm.plots._trace import plot_trace

__all__ = [
    "COMPONENT_COLORS",
    "component_colors",
    "plot_clusters",
    "plot_density",
    "plot_k_selection",
    "plot_kmeans_vs_gmm",
    "plot_membership_uncertainty",
    "plot_model_search",
    "plot_pairs",
    "plot_trace",
    "save_figure",
]
