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
# # 3. The Bayesian Gaussian mixture in PyMC
#
# EM returns one set of parameters and, from it, one set of membership probabilities. Both are
# uncertain: with 272 points the means, spreads and weights are estimated, not known, and a point's
# membership probability inherits that uncertainty. The Bayesian GMM puts priors on the parameters and
# returns their joint posterior; every derived quantity (a membership probability, whether two points
# belong together, the density at a new point) then comes with a posterior distribution.
#
# This notebook builds the model (`bayes_gmm.models.build_model`), looks at its priors through the prior
# predictive distribution, fits it by NUTS and by ADVI (`bayes_gmm.inference.fit_gmm`), deals with
# label switching, and reads the posterior over assignments: membership probabilities with credible
# intervals, the co-clustering matrix, and a single summary partition. It ends by setting the posterior
# beside the EM estimate.

# %%
import os
import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pymc as pm
import xarray as xr
from scipy.optimize import brentq
from sklearn.metrics import adjusted_rand_score

from bayes_gmm.datasets import load_faithful
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import (
    apply_relabelling,
    co_clustering,
    compare_with_em,
    find_relabelling,
    fit_gmm,
    membership_probabilities,
    posterior_partition,
)
from bayes_gmm.models import GMMPriors, build_model
from bayes_gmm.plots import plot_clusters, plot_density, plot_membership_uncertainty

QUICK = os.environ.get("BAYES_GMM_QUICK") == "1"
SEED = 20240503
# Full run: 4 chains x (1000 tune + 1000 draws), about a minute on two cores. QUICK: a smoke test only.
NUTS = {"draws": 150, "tune": 150, "chains": 2} if QUICK else {"draws": 1000, "tune": 1000, "chains": 4}
ADVI = {"draws": 300, "advi_max_iter": 3000, "advi_restarts": 1} if QUICK else {"draws": 1000}
if QUICK:  # too few draws for the diagnostics to pass; the warning would only be noise here
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

faithful = load_faithful()
X = faithful.to_numpy()
em = fit_em(faithful, 2, covariance_type="full", n_init=10, random_seed=SEED)

# %% [markdown]
# ## The model
#
# The generative story of notebook 1, with priors on the parameters:
#
# ```
# weights        ~ Dirichlet(1, ..., 1)                         uniform over the simplex
# means[k, d]    ~ Normal(data mean_d, 2 x data sd_d)
# Sigma[k]       = diag(sd[k]) Omega[k] diag(sd[k])
#   sd[k, d]^2   ~ InverseGamma(1/2, data var_d / 200),   Omega[k] ~ LKJ(eta = 2)
# x_i            ~ sum_k weights[k] N(means[k], Sigma[k])       (z_i summed out)
# ```
#
# The priors are weakly informative *on the data's scale* (`GMMPriors` fills them in from the data), so
# the model behaves the same whether waiting time is in minutes or hours. A component's standard deviation
# has prior median 0.15 data sd_d and a heavy upper tail (1 / sd ~ HalfNormal(10 / sd_d)), and its density
# vanishes at zero, which matters here: Old Faithful's waiting times are whole minutes, so many points share
# a value, and a component squeezed onto them would have an unbounded likelihood. The LKJ prior on each
# correlation matrix with ``eta = 2`` mildly favours weaker correlations; ``eta = 1`` is uniform.
#
# The assignments ``z_i`` are **marginalised out**: the likelihood is the log-sum-exp of notebook 1.
# Discrete latent variables cannot be sampled by NUTS, and summing them out also gives the pointwise
# log-likelihood ``log p(x_i | theta)`` that WAIC and LOO need (notebook 4). The membership probabilities
# are recovered afterwards, draw by draw.

# %%
print(GMMPriors().resolve(X, 2))
model = build_model(faithful, 2, covariance_type="full")
print(model.str_repr())
print("coords:", {name: len(values) for name, values in model.coords.items()})
print(
    "free variables:",
    [v.name for v in model.free_RVs],
    " deterministic:",
    [v.name for v in model.deterministics],
)
assert {v.name for v in model.free_RVs} == {"weights", "means", "chol_cov"}

# %% [markdown]
# ### Prior predictive check
#
# Before fitting, simulate data sets from the priors alone. They should cover the plausible range of
# the data (eruptions of a few minutes, waits of about an hour) without being absurdly concentrated or
# absurdly spread: that is what "weakly informative" means in practice. (They also allow negative
# durations: the Gaussian components know nothing of positivity. With this much data that does not
# matter; for data near a boundary, model a transformed variable such as the log.)

# %%
with model:
    prior = pm.sample_prior_predictive(draws=200, random_seed=SEED)
simulated = (
    prior.prior_predictive["obs"].stack(sample=("chain", "draw")).transpose("sample", "obs_id", "feature")
)

fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), layout="constrained", sharex=True, sharey=True)
axes[0].scatter(X[:, 0], X[:, 1], s=6, color="black")
axes[0].set_title("observed")
for ax, s in zip(axes[1:], (0, 1, 2), strict=True):
    ax.scatter(simulated[s, :, 0], simulated[s, :, 1], s=6, alpha=0.6)
    ax.set_title(f"prior predictive draw {s}")
for ax in axes:
    ax.set_xlabel("eruptions")
axes[0].set_ylabel("waiting")
axes[0].set_xlim(-5, 12)
axes[0].set_ylim(-20, 160)

# The data's overall mean lies in the middle of what the prior predicts.
prior_means = simulated.mean("obs_id").to_numpy()
lower, upper = np.quantile(prior_means, [0.05, 0.95], axis=0)
print(
    "90% prior predictive interval of the data mean:",
    lower.round(1),
    upper.round(1),
    " observed:",
    X.mean(0).round(1),
)
assert np.all((lower < X.mean(0)) & (X.mean(0) < upper))

# %% [markdown]
# ## Fitting by NUTS
#
# `fit_gmm` starts every chain at the EM estimate (slightly jittered), runs NUTS, relabels the draws
# (below), computes the pointwise log-likelihood and the convergence diagnostics after relabelling, and
# returns an `xarray.DataTree`, the result type of PyMC 6 and ArviZ 1 (groups `posterior`,
# `sample_stats`, `log_likelihood`, `observed_data`).

# %%
idata = fit_gmm(faithful, 2, covariance_type="full", method="nuts", em=em, random_seed=SEED, **NUTS)
print(
    {k: idata.attrs[k] for k in ("backend", "sampling_time_s", "rhat_max", "ess_bulk_min", "n_divergences")}
)
summary = az.summary(idata, var_names=["weights", "means"])
print(summary.to_string())

# %%
trace = az.plot_trace_dist(idata, var_names=["weights", "means"], compact=True, backend="matplotlib")

assert idata.attrs["rhat_max"] < (1.1 if QUICK else 1.01)
assert set(idata.children) >= {"posterior", "sample_stats", "log_likelihood", "observed_data"}
assert idata.log_likelihood["obs"].sizes["obs_id"] == len(X)

# %% [markdown]
# R-hat compares the spread between chains with the spread within them (close to 1 means the chains
# agree) and the effective sample size (ESS) says how many independent draws the autocorrelated chain is
# worth. The full settings give R-hat below 1.01 and thousands of effective draws here; the quick
# settings only show that the machinery works.
#
# ## Fitting by ADVI
#
# Automatic differentiation variational inference fits a Gaussian approximation (on the unconstrained
# scale) by maximising the evidence lower bound. Mean-field ADVI, with independent coordinates, is fast
# and scales to large data through minibatches, but it ignores posterior correlations, tends to
# under-state posterior spread, and its stochastic optimisation adds noise of its own. Its means are
# close to the NUTS posterior means; its standard deviations deserve less trust (compare the two SD
# columns below).

# %%
idata_advi = fit_gmm(faithful, 2, covariance_type="full", method="advi", em=em, random_seed=SEED, **ADVI)
print(
    {k: idata_advi.attrs[k] for k in ("advi_converged", "advi_iterations", "elbo_final", "sampling_time_s")}
)
nuts_table = compare_with_em(idata, em).set_index("parameter")
advi_table = compare_with_em(idata_advi, em).set_index("parameter")
columns = ["posterior_mean", "posterior_sd"]
side_by_side = nuts_table[columns].add_suffix("_nuts").join(advi_table[columns].add_suffix("_advi"))
side_by_side.round(3)

# %%
distance = (
    side_by_side.posterior_mean_advi - side_by_side.posterior_mean_nuts
).abs() / side_by_side.posterior_sd_nuts
print("largest |ADVI mean - NUTS mean| in NUTS standard deviations:", round(float(distance.max()), 2))
assert distance.max() < 3

# %% [markdown]
# ## Label switching and relabelling
#
# The likelihood is unchanged when components are renamed: ``(w_1, mu_1, Sigma_1)`` and
# ``(w_2, mu_2, Sigma_2)`` can swap places. With symmetric priors the posterior therefore has ``K!``
# identical modes. A sampler may visit several, or different chains may settle in different ones.
# Quantities that are not invariant to renaming (``means[0]``, ``P(z_i = 0)``) are then meaningless when
# pooled over draws, and R-hat flags the chains as disagreeing even though each is fine.
#
# To see the damage, swap the two labels in one chain of the fit by hand:


# %%
def swap_labels_in_chain(posterior, chain):
    """Reverse the component order of every variable in one chain (what a switched chain looks like)."""
    out = posterior.copy(deep=True)
    for name, var in posterior.data_vars.items():
        if "component" in var.dims:
            out[name].loc[{"chain": chain}] = (
                var.sel(chain=chain).isel(component=slice(None, None, -1)).to_numpy()
            )
    return out


switched = swap_labels_in_chain(idata.posterior.to_dataset(), chain=1)
switched_idata = xr.DataTree.from_dict(
    {"posterior": switched, "observed_data": idata.observed_data.to_dataset()}
)
rhat_switched = float(az.rhat(switched, var_names=["means"])["means"].max())
p_switched = membership_probabilities(switched_idata)["probability"].sel(component=0)
print(
    f"one chain switched: max R-hat {rhat_switched:.2f};  P(z_i = 0) ranges {float(p_switched.min()):.2f} to {float(p_switched.max()):.2f}"
)
assert rhat_switched > 1.5
assert 0.3 < float(p_switched.min()) and float(p_switched.max()) < 0.7  # every point looks ambiguous

# %% [markdown]
# Every point now looks like a coin flip, although the sampler was never in doubt. The cure is to
# relabel before pooling: match each draw's components to a reference labelling (here the EM estimate)
# by the permutation that minimises the summed KL divergence from each drawn component (mean and
# covariance, plus its weight) to the reference component it is given (the Hungarian algorithm,
# `scipy.optimize.linear_sum_assignment`). Comparing whole Gaussians rather than only their means keeps
# components that share a centre but differ in spread (a dense core inside a broad halo) apart. `fit_gmm`
# does this for every fit and records what it did in `idata.attrs`:

# %%
relabelling = find_relabelling(
    switched["means"].transpose("chain", "draw", "component", "feature").to_numpy(),
    switched["covariances"].transpose("chain", "draw", "component", "feature", "feature_cov").to_numpy(),
    ref_means=np.asarray(em.means),
    ref_covariances=np.asarray(em.covariances),  # a "full" EM fit: one (D, D) matrix per component
    weights=switched["weights"].transpose("chain", "draw", "component").to_numpy(),
    ref_weights=np.asarray(em.weights),
)
repaired = apply_relabelling(switched, relabelling)
rhat_repaired = float(az.rhat(repaired, var_names=["means"])["means"].max())
print(
    f"relabelled fraction of draws: {relabelling.fraction_relabelled:.2f};  max R-hat after: {rhat_repaired:.3f}"
)
print(
    "what fit_gmm recorded:",
    {k: idata.attrs[k] for k in ("relabelled_fraction", "rhat_max_before_relabelling", "rhat_max")},
)
assert rhat_repaired < 1.1
assert np.allclose(repaired["means"].to_numpy(), idata.posterior["means"].to_numpy())

# %% [markdown]
# Quantities that do not depend on the labels need no relabelling at all: the co-clustering matrix
# below, the density, the number of occupied clusters. Where possible, report those.
#
# ## Who belongs where, and how sure are we?
#
# For each posterior draw ``theta_s`` the responsibilities ``P(z_i = k | x_i, theta_s)`` follow from Bayes'
# rule; their mean over draws is the posterior membership probability and their quantiles a credible
# interval. For points deep inside a cluster the probability is 1 in every draw. Near the boundary it
# moves from draw to draw, because the boundary itself moves with the parameters.

# %%
membership = membership_probabilities(idata, interval_prob=0.9)
table = membership[["probability", "probability_lower", "probability_upper"]].sel(component=1).to_dataframe()
table = table.assign(eruptions=X[:, 0], waiting=X[:, 1], entropy=membership["entropy"].to_numpy())
print("the five least certain points (component 1 = long eruptions):")
print(table.sort_values("entropy", ascending=False).head(5).round(3).to_string())
assert np.allclose(membership["probability"].sum("component"), 1.0)

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
plot_clusters(idata, ax=axes[0], em=em, random_seed=SEED)
axes[0].set_title("posterior mean (bold), posterior draws (thin), EM (dashed)")
plot_membership_uncertainty(idata, ax=axes[1])
axes[1].set_title("membership uncertainty (entropy)")

# %% [markdown]
# ### The midway points
#
# Walk along the segment from one component's mean to the other's and ask, at every step, for the
# probability of belonging to the long-eruption component. EM gives a single sigmoid-like curve; the
# posterior gives a band. At the point where EM's probability is exactly one half, the posterior
# probability is also close to a half, but its credible interval is wide: whether a point there "belongs"
# to one cluster is genuinely uncertain, and the Bayesian answer says so.

# %%
t = np.linspace(0, 1, 101)
segment = em.means[0] + t[:, None] * (em.means[1] - em.means[0])
along = membership_probabilities(idata, X=segment, interval_prob=0.9).sel(component=1)
long_component_em = em.predict_proba(segment)[:, 1]
t_half = brentq(
    lambda s: em.predict_proba((em.means[0] + s * (em.means[1] - em.means[0]))[None])[0, 1] - 0.5, 0, 1
)
midway = em.means[0] + t_half * (em.means[1] - em.means[0])
at_midway = membership_probabilities(idata, X=midway[None], interval_prob=0.9).sel(component=1)
p_mid = float(at_midway["probability"][0])
lo_mid, hi_mid = float(at_midway["probability_lower"][0]), float(at_midway["probability_upper"][0])

fig, ax = plt.subplots(figsize=(7, 4))
ax.fill_between(
    t, along["probability_lower"], along["probability_upper"], alpha=0.3, label="posterior 90% interval"
)
ax.plot(t, along["probability"], label="posterior mean")
ax.plot(t, long_component_em, ls="--", color="black", label="EM")
ax.axvline(t_half, color="grey", lw=0.8)
ax.set(xlabel="position between the two EM means (0 = short, 1 = long)", ylabel="P(long-eruption component)")
ax.legend()
print(f"midway point {midway.round(2)}: posterior P = {p_mid:.2f}, 90% interval [{lo_mid:.2f}, {hi_mid:.2f}]")

assert abs(p_mid - 0.5) < 0.15
assert hi_mid - lo_mid > 0.2  # genuinely uncertain there
assert (
    float(along["probability"][0]) < 0.01 and float(along["probability"][-1]) > 0.99
)  # certain at the means

# %% [markdown]
# ### Co-clustering and a point partition
#
# ``P(z_i = z_j | data)``, the posterior probability that two points share a component, is invariant to
# labelling. Sorted by eruption time, the matrix shows two solid blocks and a thin band of doubtful
# pairs between them.
#
# A single "best" clustering is best chosen by decision theory rather than by taking every point's most
# probable label: `posterior_partition` returns, among many candidate partitions, the one with the least
# posterior expected *variation of information* to the unknown true partition (Wade and Ghahramani
# 2018), computed from the co-clustering matrix.

# %%
similarity = co_clustering(idata, max_draws=300 if QUICK else 1000)
order = np.argsort(X[:, 0])
fig, ax = plt.subplots(figsize=(5.2, 4.5))
image = ax.imshow(similarity.to_numpy()[np.ix_(order, order)], cmap="viridis", vmin=0, vmax=1)
fig.colorbar(image, ax=ax, label="P(same component)")
ax.set(title="co-clustering matrix (points sorted by eruption time)", xlabel="point", ylabel="point")
assert np.allclose(similarity, similarity.T) and np.allclose(np.diag(similarity), 1)

partition = posterior_partition(idata, random_seed=SEED)
ari_partition = adjusted_rand_score(em.predict(X), partition.labels)
print(
    f"point partition: {partition.n_clusters} clusters, expected VI loss {partition.loss:.3f}, ARI vs EM labels {ari_partition:.3f}"
)
assert partition.n_clusters == 2 and ari_partition > 0.95

# %% [markdown]
# ## Posterior against EM
#
# With this much data and weak priors, the posterior mean should sit within a posterior standard
# deviation or two of the maximum-likelihood estimate, and the posterior standard deviations are the
# error bars EM does not provide. `compare_with_em` lays them side by side (`difference_in_sd` is the
# gap in posterior standard deviations).

# %%
comparison = compare_with_em(idata, em)
print(comparison.round(3).to_string(index=False))
assert comparison["difference_in_sd"].abs().max() < 3

# %%
ax = plot_density(idata)
ax.set_title("posterior mean density (log scale contours) with the data")

# %% [markdown]
# ## Summary
#
# - The Bayesian GMM is the same likelihood with weakly informative, data-scaled priors; the assignments
#   are summed out for sampling and recovered afterwards.
# - NUTS gives the posterior with diagnostics; mean-field ADVI is faster and agrees on the means but is
#   less reliable about spread.
# - Label switching makes per-component summaries meaningless until draws are relabelled; R-hat before and
#   after relabelling tells the story. Label-free quantities (co-clustering) avoid the issue.
# - Membership probabilities come with intervals, which are widest exactly where a hard assignment
#   would be most misleading.
#
# Notebook 4 asks how many components to use, and puts the fitted mixture to work.
