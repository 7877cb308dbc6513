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
# # 2. Expectation-maximisation from scratch
#
# The maximum-likelihood estimate of a Gaussian mixture has no closed form: the log of a sum over
# components does not split into per-component terms. **Expectation-maximisation** (EM; Dempster, Laird
# and Rubin 1977) gets around this by alternating two easy steps. This notebook derives them, codes them
# in about forty lines of NumPy, runs them on the Old Faithful data, and checks the answer against the
# package's EM (`bayes_gmm.em_baseline.fit_em`), scikit-learn's `GaussianMixture` and the value R's mclust
# publishes. It ends with choosing the number of components by BIC, AIC and ICL.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from bayes_gmm.datasets import load_faithful
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.plots import plot_clusters

QUICK = os.environ.get("BAYES_GMM_QUICK") == "1"
SEED = 20240502
K_RANGE = range(1, 5) if QUICK else range(1, 8)

faithful = load_faithful()
X = faithful.to_numpy()
n, d = X.shape
print(faithful.describe().round(2))

# %% [markdown]
# ## Deriving the two steps
#
# Write ``theta = (w, mu, Sigma)`` and ``N_ik = N(x_i | mu_k, Sigma_k)``. The log-likelihood is
# ``l(theta) = sum_i log sum_k w_k N_ik``. For *any* distribution ``q_i`` over the components of point
# ``i``, Jensen's inequality gives a lower bound
#
# $$ \ell(\theta) \;\ge\; \sum_i \sum_k q_{ik} \log \frac{w_k N_{ik}}{q_{ik}} \;=:\; F(q, \theta), $$
#
# with equality when ``q_ik`` is the posterior probability of the component,
#
# $$ r_{ik} = \frac{w_k N_{ik}}{\sum_j w_j N_{ij}} \quad\text{(the responsibility).} $$
#
# EM maximises ``F`` by coordinate ascent:
#
# - **E-step**: set ``q = r`` at the current ``theta``. The bound now touches ``l(theta)``.
# - **M-step**: maximise ``F(r, theta)`` over ``theta``. ``F`` is a weighted sum of *Gaussian*
#   log-densities (the log no longer acts on a sum), so the maximiser is closed-form: with
#   ``N_k = sum_i r_ik``,
#
# $$ w_k = \frac{N_k}{n}, \qquad \mu_k = \frac{1}{N_k}\sum_i r_{ik} x_i, \qquad
#    \Sigma_k = \frac{1}{N_k}\sum_i r_{ik} (x_i-\mu_k)(x_i-\mu_k)^\top , $$
#
# weighted versions of the sample proportion, mean and covariance.
#
# **Monotonicity.** ``l(theta_new) >= F(r, theta_new) >= F(r, theta_old) = l(theta_old)``: no iteration
# can decrease the log-likelihood. EM converges to a stationary point, usually a local maximum, which is
# why it is restarted from several starts. (The global "maximum" is infinite: a component that shrinks
# onto one point has unbounded density. A tiny ridge added to every ``Sigma_k`` keeps it away.)
#
# ## The code
#
# Everything stays in log space, and the E-step returns the log-likelihood for free, as the normaliser
# of the responsibilities.


# %%
def log_gaussians(X, means, covs):
    """log N(x_i | mu_k, Sigma_k), shape (n, K), via Cholesky factors (no matrix inverse)."""
    out = np.empty((X.shape[0], len(means)))
    for k, (mu, cov) in enumerate(zip(means, covs, strict=True)):
        L = np.linalg.cholesky(cov)
        y = np.linalg.solve(L, (X - mu).T)
        out[:, k] = -0.5 * (X.shape[1] * np.log(2 * np.pi) + (y**2).sum(0)) - np.log(np.diag(L)).sum()
    return out


def e_step(X, weights, means, covs):
    """Responsibilities r_ik and the log-likelihood at the current parameters."""
    log_joint = np.log(weights) + log_gaussians(X, means, covs)
    log_norm = logsumexp(log_joint, axis=1, keepdims=True)
    return np.exp(log_joint - log_norm), float(log_norm.sum())


def m_step(X, resp, reg=1e-6):
    """Closed-form maximisers: weighted proportions, means and covariances."""
    nk = resp.sum(axis=0)  # effective number of points per component
    means = resp.T @ X / nk[:, None]
    covs = np.stack(
        [
            (resp[:, k, None] * (X - means[k])).T @ (X - means[k]) / nk[k] + reg * np.eye(X.shape[1])
            for k in range(len(nk))
        ]
    )
    return nk / len(X), means, covs


def em_gmm(X, K, *, seed=0, tol=1e-10, max_iter=10_000):
    """EM for a full-covariance GMM, started from a k-means partition; returns parameters and log-lik trace."""
    labels = KMeans(n_clusters=K, n_init=1, random_state=seed).fit_predict(X)
    weights, means, covs = m_step(X, np.eye(K)[labels])  # hard responsibilities to start
    history = []
    for _ in range(max_iter):
        resp, loglik = e_step(X, weights, means, covs)
        history.append(loglik)
        if len(history) > 1 and history[-1] - history[-2] < tol:
            break
        weights, means, covs = m_step(X, resp)
    return {"weights": weights, "means": means, "covs": covs, "resp": resp, "history": np.array(history)}


# %% [markdown]
# ## Run it on Old Faithful
#
# Eruption duration against waiting time to the next eruption shows two groups: short eruptions followed
# by short waits, and long ones by long waits. Two full-covariance components, a few starts, keep the best.

# %%
runs = [em_gmm(X, 2, seed=SEED + s) for s in range(5)]
best = max(runs, key=lambda r: r["history"][-1])
history = best["history"]
print(f"iterations: {len(history)}   final log-likelihood: {history[-1]:.6f}")
print("weights:", best["weights"].round(4))
print("means:\n", best["means"].round(4))

# Monotone: EM never decreases the log-likelihood (up to rounding).
assert np.all(np.diff(history) >= -1e-8), np.diff(history).min()

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
axes[0].plot(history, marker=".")
axes[0].set(xlabel="EM iteration", ylabel="log-likelihood", title="EM climbs monotonically")
axes[1].semilogy(np.maximum(np.diff(history), 1e-16), marker=".")
axes[1].set(
    xlabel="EM iteration",
    ylabel="increase in log-likelihood",
    title="... and slows down (linear convergence)",
)

# %% [markdown]
# ## Check against the package, scikit-learn and mclust
#
# The package's EM (a fused numba kernel, restarts, four covariance types) and scikit-learn's
# `GaussianMixture` should reach the same maximum, and R's mclust publishes ``log L = -1130.264`` for this
# model (see the project's reference notes). All three are run with a tight tolerance so that they stop
# at the same point.

# %%
em = fit_em(X, 2, covariance_type="full", n_init=10, tol=1e-10, random_seed=SEED)
sk = GaussianMixture(2, covariance_type="full", n_init=10, tol=1e-10, max_iter=10_000, random_state=SEED).fit(
    X
)
loglik = {"from scratch": history[-1], "bayes_gmm fit_em": em.log_likelihood, "scikit-learn": sk.score(X) * n}
print(pd.Series(loglik).round(6).to_string())

assert abs(loglik["from scratch"] - loglik["bayes_gmm fit_em"]) < 1e-4
assert abs(loglik["from scratch"] - loglik["scikit-learn"]) < 1e-4
assert abs(loglik["from scratch"] - (-1130.264)) < 1e-3  # mclust, rounded to 3 decimals

# Same parameters too, once the components are put in the same order (by mean eruption time).
order_ours, order_em = np.argsort(best["means"][:, 0]), np.argsort(em.means[:, 0])
assert np.allclose(best["means"][order_ours], em.means[order_em], atol=1e-4)
assert np.allclose(best["covs"][order_ours], em.covariances[order_em], atol=1e-3)
assert np.allclose(best["weights"][order_ours], em.weights[order_em], atol=1e-5)

# %%
ax = plot_clusters(em, X)
ax.set_title("Old Faithful, 2-component GMM by EM (1 and 2 sigma ellipses)")

# %% [markdown]
# Two remarks on the fit. The components are strongly correlated within themselves (longer eruptions,
# longer waits) which is why diagonal covariances would need more components to describe the same
# shape. And the responsibilities are nearly 0 or 1 for most points: the clusters are well separated
# here. Notebook 3 asks how *certain* those numbers are once parameter uncertainty is included.

# %%
resp = em.predict_proba(X)
print("points with max responsibility below 0.95:", int(np.sum(resp.max(axis=1) < 0.95)), "of", n)

# %% [markdown]
# ## How many components? BIC, AIC and ICL
#
# More components never lower the maximised likelihood, so ``k`` is chosen by penalising the number of
# free parameters ``p`` (for full covariances ``p = (k - 1) + k d + k d (d + 1) / 2``):
#
# - ``AIC = -2 log L + 2 p`` aims at predictive accuracy and tends to pick more components;
# - ``BIC = -2 log L + p log n`` approximates the log marginal likelihood (Schwarz) and is consistent
#   for the number of components of a correctly specified mixture;
# - ``ICL = BIC - 2 sum_i log max_k r_ik`` adds the entropy of the classification, so it prefers
#   well-*separated* clusters over a better density fit.
#
# The package uses scikit-learn's sign (lower is better); mclust reports ``-BIC``. The table fits every
# ``k`` and every covariance structure.

# %%
rows = []
for covariance_type in ("full", "tied", "diag", "spherical"):
    for k in K_RANGE:
        fit = fit_em(X, k, covariance_type=covariance_type, n_init=10, random_seed=SEED)
        rows.append(
            {
                "covariance_type": covariance_type,
                "k": k,
                "log_likelihood": fit.log_likelihood,
                "n_parameters": fit.n_parameters,
                "bic": fit.bic(),
                "aic": fit.aic(),
                "icl": fit.icl(),
            }
        )
criteria = pd.DataFrame(rows)
print(criteria[criteria.covariance_type == "full"].round(2).to_string(index=False))

full = criteria[criteria.covariance_type == "full"].set_index("k")
assert abs(full.loc[1, "log_likelihood"] - (-1289.797)) < 1e-2  # mclust's one-component figure
assert np.all(np.diff(full["log_likelihood"]) > -1e-6)  # nested models: the likelihood never drops

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained", sharex=True)
for ax, criterion in zip(axes, ("bic", "aic", "icl"), strict=True):
    for covariance_type, group in criteria.groupby("covariance_type"):
        ax.plot(group["k"], group[criterion], marker="o", label=covariance_type)
    ax.set(title=criterion.upper() + " (lower is better)", xlabel="number of components k")
axes[0].legend()

best_rows = criteria.loc[criteria.groupby("covariance_type")["bic"].idxmin(), ["covariance_type", "k", "bic"]]
print("BIC's pick per covariance type:\n", best_rows.to_string(index=False))
overall = criteria.loc[criteria["bic"].idxmin()]
print(f"overall BIC pick: {overall.covariance_type}, k = {overall.k}")
# mclust's published choice for this data is EEE ("tied") with three components.
assert (overall.covariance_type, overall.k) == ("tied", 3)

# %% [markdown]
# BIC picks a tied covariance (one shape shared by all clusters) with three components, the same model
# mclust selects; with full covariances it prefers two. ICL, which penalises overlapping clusters,
# settles on fewer. The criteria answer different questions (density fit versus clear-cut clusters),
# and none of them says how sure we should be. Notebook 3 fits the same model by Bayesian inference,
# where uncertainty comes with the answer.
