"""plot_kmeans_vs_gmm: KMeans clusters beside an EM-fitted GMM's, colours matched between the panels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from scipy.optimize import linear_sum_assignment

from bayes_gmm._validation import check_n_components, checked_data, seed_sequence
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.inference._draws import fit_draws
from bayes_gmm.plots._checks import feature_indices
from bayes_gmm.plots._ellipses import draw_clusters, scatter_components
from bayes_gmm.plots._style import component_colors, component_handles, set_aspect


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
    covariance_type : str, default "full"
        Any name :func:`bayes_gmm.em_baseline.fit_em` takes (scikit-learn's four or mclust's 14).
        The GMM's covariance structure.
    features : pair of int or str, default (0, 1)
        Features to plot when X has more than two (both methods use all features).
    aspect : {"auto", "equal"}, default "auto"
        "equal" when both features are on the same scale.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
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
    checked = checked_data(X, min_samples=n_components, name="X")
    data, names = checked.values, checked.feature_names
    pair = feature_indices(features, names, n=2, func="plot_kmeans_vs_gmm")
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
    root = seed_sequence(random_seed)  # KMeans takes an int seed
    kmeans = KMeans(n_clusters=n_components, n_init=10, random_state=int(root.generate_state(1)[0])).fit(data)
    em = fit_em(data, n_components, covariance_type=covariance_type, n_init=5, random_seed=root)
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
    scatter_components(
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
    draws = fit_draws(em, data, func="plot_kmeans_vs_gmm")
    colors = [palette[gmm_map[k]] for k in range(n_components)]
    style = draw_clusters(
        axes[1],
        draws,
        pair,
        gmm_labels,
        colors,
        sigmas=(1, 2),
        n_posterior_draws=0,
        em=None,
        rng=None,
        names=None,
    )
    for collection in component_handles(axes[1]):
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
        set_aspect(ax, aspect)
    axes[0].set_ylabel(names[pair[1]])
    axes[0].legend(fontsize="small", loc="best", framealpha=0.85)
    gmm_handles = sorted(component_handles(axes[1]), key=lambda c: c.get_gid())
    axes[1].legend(handles=gmm_handles + style, fontsize="small", loc="best", framealpha=0.85)
    return axes
