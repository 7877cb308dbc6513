# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Beyond KMeans: Gaussian mixtures
#
# KMeans is the default clustering tool, and it is often the wrong one. It assigns every point to the
# nearest centre, which implicitly assumes that clusters are round, of similar spread, and cleanly
# separated; and it says nothing about how sure an assignment is. A **Gaussian mixture model** (GMM)
# drops those assumptions: each cluster is a multivariate normal distribution with its own mean,
# covariance matrix and weight, and each point gets a *probability* of belonging to each cluster.
#
# This notebook
#
# 1. shows where KMeans falls short, on simulated data with known labels;
# 2. explains what a covariance matrix does to a Gaussian, with density contours and ellipses;
# 3. writes down the GMM as a generative story and samples from it;
# 4. writes its likelihood (a log-sum-exp over components) in NumPy and checks it against SciPy.
#
# The next notebooks fit the model: by expectation-maximisation (notebook 2) and the Bayesian way with
# PyMC (notebooks 3 and 4).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats
from scipy.special import logsumexp
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from bayes_gmm.datasets import elongated_clusters
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.plots import plot_kmeans_vs_gmm, plot_membership_uncertainty

QUICK = os.environ.get("BAYES_GMM_QUICK") == "1"  # nothing here is slow; the switch is kept for uniformity
SEED = 20240501
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## Where KMeans falls short
#
# The simulated data have three clusters: two long, thin, parallel ones (tilted by 20 degrees, 2.2 units
# apart) and one small round one off to the side. The true cluster of every point is known, so both
# methods can be scored with the **adjusted Rand index** (ARI): 1 for a perfect recovery of the partition
# (up to renaming the clusters), about 0 for a random one.

# %%
X, labels_true = elongated_clusters(n_samples=600, random_seed=SEED)

kmeans = KMeans(n_clusters=3, n_init=10, random_state=SEED).fit(X)
em = fit_em(X, 3, covariance_type="full", n_init=10, random_seed=SEED)

ari_kmeans = adjusted_rand_score(labels_true, kmeans.labels_)
ari_gmm = adjusted_rand_score(labels_true, em.predict(X))
print(f"adjusted Rand index  KMeans: {ari_kmeans:.3f}   GMM (full covariance, EM): {ari_gmm:.3f}")
assert ari_gmm > 0.9, ari_gmm
assert ari_gmm > ari_kmeans + 0.3, (ari_gmm, ari_kmeans)

# %%
axes = plot_kmeans_vs_gmm(X, 3, labels_true=labels_true, aspect="equal", random_seed=SEED)

# %% [markdown]
# KMeans minimises the within-cluster sum of squared Euclidean distances, so its clusters are the cells
# of a Voronoi tessellation around the centres: convex, with straight boundaries halfway between
# centres. Two long parallel clusters are closer to each other *across* their width than their own ends
# are *along* their length, so KMeans cuts them crosswise. The mixture models each cluster's spread and
# orientation with a covariance matrix and recovers them.
#
# Three shortcomings are at work:
#
# - **Spherical clusters.** Euclidean distance treats every direction alike. KMeans is the limit of a
#   GMM whose components all share one covariance ``sigma^2 I`` with ``sigma -> 0``.
# - **No variance.** KMeans has no notion of a cluster's spread, so a wide cluster and a tight one are
#   cut at the midpoint between their centres.
# - **Hard assignments.** Every point gets one label, including points that lie between clusters.
#
# The mixture's answer to the last point is the **responsibility** ``P(z_i = k | x_i)``, the probability
# that point ``i`` came from component ``k``. Points are drawn large and dark below where that probability
# is far from 0 or 1; in this data set that happens only where the two long clusters nearly touch.

# %%
ax = plot_membership_uncertainty(em, X, aspect="equal")
ax.set_title("GMM membership uncertainty (entropy of P(z | x))")
proba = em.predict_proba(X)
print("points with max_k P(z=k|x) < 0.9:", int(np.sum(proba.max(axis=1) < 0.9)), "of", len(X))

# %% [markdown]
# Constraining the mixture shows which assumption matters. A GMM with *spherical* covariances (one
# variance per component, no orientation) has the same blind spot as KMeans; a *diagonal* one can
# stretch clusters only along the coordinate axes, which the tilted clusters are not aligned with.

# %%
for covariance_type in ("spherical", "diag", "tied", "full"):
    fit = fit_em(X, 3, covariance_type=covariance_type, n_init=10, random_seed=SEED)
    ari = adjusted_rand_score(labels_true, fit.predict(X))
    print(
        f"{covariance_type:>9}: ARI {ari:.3f}  log-likelihood {fit.log_likelihood:9.2f}  BIC {fit.bic():8.1f}"
    )

# %% [markdown]
# ## What a covariance matrix does
#
# A 2-D Gaussian ``N(mu, Sigma)`` has density
#
# $$ p(x) = (2\pi)^{-1} |\Sigma|^{-1/2} \exp\{-\tfrac12 (x-\mu)^\top \Sigma^{-1} (x-\mu)\}. $$
#
# Its contours are the ellipses of constant *Mahalanobis distance* ``(x - mu)' Sigma^{-1} (x - mu) = c^2``.
# Writing ``Sigma = L L'`` (Cholesky, or any square root), ``x = mu + L u`` maps the unit circle
# ``|u| = c`` onto that ellipse: the covariance matrix is the linear map that turns white noise into the
# cluster. Its eigenvectors are the ellipse's axes and the square roots of its eigenvalues the standard
# deviations along them. Below, ``Sigma = R diag(s1^2, s2^2) R'`` is built from a rotation ``R`` and two
# scales, and the 1- and 2-sigma ellipses are drawn from ``mu + c L u`` on the density contours.


# %%
def covariance(scales, angle_deg):
    """Sigma = R diag(scales^2) R' for a rotation R by angle_deg."""
    t = np.deg2rad(angle_deg)
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return R @ np.diag(np.square(scales)) @ R.T


def ellipse_points(mean, cov, n_sigma, n=200):
    """Points mu + n_sigma * L u on the n_sigma ellipse, u on the unit circle, L = chol(cov)."""
    t = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(t), np.sin(t)])
    return (mean[:, None] + n_sigma * np.linalg.cholesky(cov) @ circle).T


examples = {
    "identity": covariance([1.0, 1.0], 0),
    "diagonal (axis-aligned)": covariance([1.6, 0.5], 0),
    "correlated (rotated 35°)": covariance([1.6, 0.5], 35),
}
grid = np.linspace(-4, 4, 201)
gx, gy = np.meshgrid(grid, grid)
points = np.column_stack([gx.ravel(), gy.ravel()])
mu = np.zeros(2)

fig, axes = plt.subplots(1, 3, figsize=(13, 4.3), layout="constrained", sharey=True)
for ax, (title, cov) in zip(axes, examples.items(), strict=True):
    density = stats.multivariate_normal(mu, cov).pdf(points).reshape(gx.shape)
    ax.contourf(gx, gy, density, levels=12, cmap="Blues")
    for n_sigma in (1, 2):
        e = ellipse_points(mu, cov, n_sigma)
        ax.plot(e[:, 0], e[:, 1], color="black", lw=1.2, ls="-" if n_sigma == 1 else "--")
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    for value, vector in zip(eigenvalues, eigenvectors.T, strict=True):
        ax.annotate(
            "", xy=np.sqrt(value) * vector, xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "C3"}
        )
    ax.set_title(f"{title}\nSigma = {np.round(cov, 2).tolist()}", fontsize=9)
    ax.set_aspect("equal")
fig.suptitle(
    "Density contours of N(0, Sigma) with 1- and 2-sigma ellipses; red: sqrt(eigenvalue) x eigenvector"
)

# %% [markdown]
# Two checks of the claims above: points on the ``c``-sigma ellipse all have Mahalanobis distance ``c``,
# and the probability mass inside it is the chi-square(2) probability ``1 - exp(-c^2 / 2)`` (39% for one
# sigma, 86% for two): a "2-sigma ellipse" in two dimensions holds less than the familiar 95%.

# %%
cov = examples["correlated (rotated 35°)"]
for n_sigma in (1, 2):
    e = ellipse_points(mu, cov, n_sigma)
    maha = np.sqrt(np.einsum("nd,de,ne->n", e, np.linalg.inv(cov), e))
    assert np.allclose(maha, n_sigma)
    draws = rng.multivariate_normal(mu, cov, size=200_000)
    inside = np.mean(np.einsum("nd,de,ne->n", draws, np.linalg.inv(cov), draws) <= n_sigma**2)
    expected = 1 - np.exp(-(n_sigma**2) / 2)
    print(f"{n_sigma}-sigma ellipse: mass inside {inside:.4f} (theory {expected:.4f})")
    assert abs(inside - expected) < 0.005

# %% [markdown]
# ## The generative story
#
# A GMM with ``K`` components says each observation is made in two steps:
#
# 1. pick a component ``z_i ~ Categorical(w_1, ..., w_K)``;
# 2. draw the point from that component, ``x_i | z_i = k ~ N(mu_k, Sigma_k)``.
#
# The labels ``z_i`` are *latent*: we see only ``x_i``. Writing the story as code makes it concrete.
# The parameters below imitate the simulated data (two long clusters and a round one).

# %%
weights = np.array([0.45, 0.35, 0.20])
means = np.array([[0.0, 0.0], [0.0, 2.2], [5.0, 4.5]])
covariances = np.stack([covariance([3.0, 0.35], 20), covariance([2.2, 0.3], 20), covariance([0.6, 0.6], 0)])


def sample_gmm(n, weights, means, covariances, rng):
    z = rng.choice(len(weights), size=n, p=weights)  # step 1: the latent component
    chol = np.linalg.cholesky(covariances)  # (K, D, D)
    x = means[z] + np.einsum("nij,nj->ni", chol[z], rng.standard_normal((n, means.shape[1])))  # step 2
    return x, z


x_sim, z_sim = sample_gmm(600, weights, means, covariances, rng)
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for k in range(3):
    ax.scatter(*x_sim[z_sim == k].T, s=8, alpha=0.6, label=f"component {k} (w = {weights[k]:.2f})")
    for n_sigma in (1, 2):
        e = ellipse_points(means[k], covariances[k], n_sigma)
        ax.plot(e[:, 0], e[:, 1], color=f"C{k}", lw=1)
ax.set_aspect("equal")
ax.legend(fontsize="small")
ax.set_title("600 draws from the generative story, coloured by the latent z")

counts = np.bincount(z_sim, minlength=3) / len(z_sim)
print("component frequencies:", counts.round(3), "  weights:", weights)
assert np.allclose(counts, weights, atol=0.06)

# %% [markdown]
# ## The likelihood: a log-sum-exp over components
#
# Summing the latent label out of the story gives the mixture density
#
# $$ p(x_i) = \sum_{k=1}^K w_k\, N(x_i \mid \mu_k, \Sigma_k), \qquad
#    \log L = \sum_i \log \sum_k \exp\{\log w_k + \log N(x_i \mid \mu_k, \Sigma_k)\}. $$
#
# Two numerical habits matter. First, stay in log space and use the **log-sum-exp** trick,
# ``log sum_k exp(a_k) = m + log sum_k exp(a_k - m)`` with ``m = max_k a_k``: a point far from every
# component has all densities below the smallest positive double, and the naive sum gives ``log 0``.
# Second, never invert ``Sigma``: with ``Sigma = L L'``, solve ``L y = x - mu``; then the Mahalanobis
# distance is ``|y|^2`` and ``log |Sigma| = 2 sum log diag(L)``.


# %%
def log_gaussian(X, mean, cov):
    """log N(x | mean, cov) for every row of X, through the Cholesky factor."""
    L = np.linalg.cholesky(cov)
    y = np.linalg.solve(L, (X - mean).T)  # (D, N); a triangular solve in production code
    return -0.5 * (X.shape[1] * np.log(2 * np.pi) + np.sum(y**2, axis=0)) - np.log(np.diag(L)).sum()


def gmm_log_density(X, weights, means, covariances):
    """log p(x_i) = logsumexp_k [log w_k + log N(x_i | mu_k, Sigma_k)], shape (N,)."""
    log_joint = np.column_stack(
        [np.log(w) + log_gaussian(X, m, c) for w, m, c in zip(weights, means, covariances, strict=True)]
    )
    return logsumexp(log_joint, axis=1)


ours = gmm_log_density(x_sim, weights, means, covariances)
reference = np.log(
    sum(
        w * stats.multivariate_normal(m, c).pdf(x_sim)
        for w, m, c in zip(weights, means, covariances, strict=True)
    )
)
print(f"log-likelihood of the simulated data: ours {ours.sum():.6f}   scipy {reference.sum():.6f}")
assert np.allclose(ours, reference, rtol=0, atol=1e-10)

# The same function at the EM estimate reproduces the package's score_samples.
assert np.allclose(gmm_log_density(X, em.weights, em.means, em.covariances), em.score_samples(X), atol=1e-8)

# %% [markdown]
# Far from the data the naive formula underflows while the log-sum-exp form stays exact:

# %%
far = np.array([[60.0, -60.0]])
with np.errstate(divide="ignore"):
    naive = np.log(
        sum(
            w * stats.multivariate_normal(m, c).pdf(far[0])
            for w, m, c in zip(weights, means, covariances, strict=True)
        )
    )
stable = gmm_log_density(far, weights, means, covariances)
print(f"naive: {naive}   log-sum-exp: {stable[0]:.1f}")
assert np.isneginf(naive) and np.isfinite(stable[0])

# %% [markdown]
# ## Summary
#
# - KMeans is a GMM with equal spherical covariances and hard assignments; when clusters are elongated,
#   tilted or of different spread it cuts them in the wrong place (ARI above).
# - The covariance matrix of each component is the linear map from white noise to the cluster; its
#   eigen-decomposition gives the orientation and the spreads.
# - A GMM is a two-step generative story with a latent label; its likelihood sums the label out, and is
#   computed stably as a log-sum-exp of Cholesky-based log-densities.
#
# Notebook 2 maximises this likelihood with the EM algorithm, written from scratch.
