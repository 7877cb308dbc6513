"""NUTS on a 3-component 2-D GMM: the naive PyMC model vs bayes-gmm's, in one run; plus ADVI on 1M points.

Data (DESIGN.md): 999 points, 2-D, 3 well-separated components with full covariances; 4 chains x
(1000 tune + 1000 draws). For each run: wall time (model build, compile and sampling), the compile and
sampling times within it, minimum bulk ESS of the component means, ESS per second, worst R-hat and
divergences. The compile time is nutpie's model compilation, and for PyMC's sampler the rest of
``pm.sample`` around its own sampling clock (function compilation, worker start-up).

    (a) the model a user writes from PyMC's docs: pm.Mixture over pm.MvNormal components with
        LKJCholeskyCov priors and an ordering constraint on the first mean coordinate, default sampler
        and init ("jitter+adapt_diag");
    (b) bayes_gmm.inference.fit_gmm with each installed NUTS back end (pymc, numpyro, nutpie), which
        includes its EM fit and start points.

Then ADVI (mean-field, minibatches of 1000) on 1,000,000 points from the same mixture.

Run: python benchmarks/nuts_vs_naive.py [--skip-naive] [--backends pymc,numpyro,nutpie] [--advi-n 1000000]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pymc as pm
from threadpoolctl import threadpool_limits

from bayes_gmm.inference import available_backends, fit_gmm
from bayes_gmm.inference._arviz import convergence_diagnostics

TRUE_MEANS = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.0]])
TRUE_COVS = np.array([[[1.0, 0.5], [0.5, 1.0]], [[1.5, -0.4], [-0.4, 0.6]], [[0.8, 0.0], [0.0, 0.8]]])


def simulate(n_per_component: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.multivariate_normal(m, c, n_per_component) for m, c in zip(TRUE_MEANS, TRUE_COVS, strict=True)]
    )


def naive_model(X: np.ndarray, k: int = 3) -> pm.Model:
    d = X.shape[1]
    with pm.Model() as model:
        weights = pm.Dirichlet("weights", np.ones(k))
        # Ordered first coordinate of the means, the usual identifiability constraint from the docs.
        first = pm.Normal(
            "means_first",
            0.0,
            10.0,
            shape=k,
            transform=pm.distributions.transforms.ordered,
            initval=np.linspace(-1, 1, k),
        )
        rest = pm.Normal("means_rest", 0.0, 10.0, shape=(k, d - 1))
        components = []
        for j in range(k):
            chol, _, _ = pm.LKJCholeskyCov(f"chol_{j}", n=d, eta=2.0, sd_dist=pm.HalfNormal.dist(2.0))
            mu = pm.math.concatenate([first[j : j + 1], rest[j]])
            components.append(pm.MvNormal.dist(mu=mu, chol=chol))
        pm.Mixture("obs", w=weights, comp_dists=components, observed=X)
    return model


def diagnostics(posterior, var_names) -> tuple[float, float]:
    """(min bulk ESS, max R-hat): the same numbers fit_gmm reports for its own runs."""
    found = convergence_diagnostics(posterior, var_names)
    return found["ess_bulk_min"], found["rhat_max"]


def run_naive(X, seed):
    start = time.perf_counter()
    model = naive_model(X)
    with threadpool_limits(1), model:
        idata = pm.sample(
            1000,
            tune=1000,
            chains=4,
            cores=2,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
    wall = time.perf_counter() - start
    ess, rhat = diagnostics(idata.posterior, ["means_first", "means_rest"])
    return wall, ess, rhat, int(idata.sample_stats["diverging"].sum())


def run_ours(X, backend, seed):
    start = time.perf_counter()
    idata = fit_gmm(
        X, 3, covariance_type="full", backend=backend, draws=1000, tune=1000, chains=4, random_seed=seed
    )
    wall = time.perf_counter() - start
    ess, rhat = diagnostics(idata.posterior, ["means"])
    run = idata.attrs["sampling_time_s"]  # fit_gmm's clock around the sampler call: compile + sampling
    if "compile_time_s" in idata.attrs:  # nutpie
        sampling = run - idata.attrs["compile_time_s"]
    else:  # PyMC's own sampling clock
        sampling = idata.sample_stats.attrs.get("sampling_time", run)
    return wall, run - sampling, sampling, ess, rhat, idata.attrs.get("n_divergences", 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-naive", action="store_true", help="do not run the (slow) naive model")
    parser.add_argument("--backends", default=",".join(available_backends()))
    parser.add_argument("--advi-n", type=int, default=1_000_000, help="points for the ADVI timing (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    X = simulate(333, args.seed)
    rows = []
    if not args.skip_naive:
        wall, ess, rhat, div = run_naive(X, args.seed)
        rows.append(("naive pm.Mixture, pymc", wall, float("nan"), float("nan"), ess, rhat, div))
    for backend in [b for b in args.backends.split(",") if b]:
        rows.append((f"bayes-gmm, {backend}", *run_ours(X, backend, args.seed)))
    print(
        f"\n999 x 2, 3 components, full covariance, 4 chains x (1000 tune + 1000 draws), "
        f"{len(os.sched_getaffinity(0))} cores"
    )
    print(
        f"{'model / back end':28s} {'wall s':>8s} {'compile s':>9s} {'sampling s':>10s} {'min ESS':>8s} "
        f"{'ESS/s':>8s} {'max R-hat':>9s} {'diverg.':>7s} {'speed-up':>8s}"
    )
    naive_wall = rows[0][1] if not args.skip_naive else None
    for name, wall, compile_s, sampling, ess, rhat, div in rows:
        speedup = f"{naive_wall / wall:7.1f}x" if naive_wall else "      -"
        print(
            f"{name:28s} {wall:8.1f} {compile_s:9.1f} {sampling:10.1f} {ess:8.0f} {ess / wall:8.1f} "
            f"{rhat:9.3f} {div:7d} {speedup}"
        )
    if args.advi_n:
        big = simulate(args.advi_n // 3, args.seed + 1)
        start = time.perf_counter()
        idata = fit_gmm(
            big, 3, method="advi", minibatch_size=1000, draws=500, log_likelihood=False, random_seed=args.seed
        )
        wall = time.perf_counter() - start
        means = idata.posterior["means"].mean(("chain", "draw")).to_numpy()
        err = np.abs(
            means[np.argsort(means[:, 0] + 10 * means[:, 1])]
            - TRUE_MEANS[np.argsort(TRUE_MEANS[:, 0] + 10 * TRUE_MEANS[:, 1])]
        ).max()
        print(
            f"\nADVI (mean-field, minibatch 1000) on {len(big):,} x 2, 3 components, full: {wall:.1f} s "
            f"wall incl. EM start; {idata.attrs['advi_iterations']} iterations, converged="
            f"{bool(idata.attrs['advi_converged'])}; max |posterior mean - true mean| = {err:.3f}"
        )


if __name__ == "__main__":
    main()
