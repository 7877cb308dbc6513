"""How often fit_em's starts reach the best known maximum, and what they cost: the hierarchical start (the
default, ``init="hc"``) against the k-means start (``init="kmeans"``, the default before it) and plain
k-means restarts.

Three tables, in one run:

1. mclust: for every data set of tests/data/mclust (R mclust 6.0.0 fits of the 14 covariance models, or E
   and V in 1-D, for G = 1..4 or 1..6, made by make_mclust_reference.R there), the share of (model, G) whose
   default fit ``fit_em(X, G, covariance_type=model, init=..., random_seed=seed)`` reaches mclust's
   log-likelihood (within 1e-3, or above it), for init="kmeans" and init="hc", and the time per fit of each.
2. Best known maxima ("full" covariances, tol=1e-8): the number of seeds reaching the best of 200 random
   starts of scikit-learn's GaussianMixture (tests/test_em_restarts.py; ``--recompute-oracle`` recomputes
   them, several minutes), for plain k-means restarts (``n_init`` Lloyd's k-means starts, each run to
   convergence, as the package's own functions ran them before the screened starts), init="kmeans" and
   init="hc".
3. The time of one default fit (init="kmeans" and init="hc") on faithful and on 100,000 x 5 simulated data.

    python benchmarks/em_restarts.py                # seed 0 for table 1, 20 seeds for table 2
    python benchmarks/em_restarts.py --seeds 5 --mclust-seeds 3
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bayes_gmm._validation import seed_sequence
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.em_baseline._fit import _run_em
from bayes_gmm.em_baseline._hc import _TREES
from bayes_gmm.em_baseline._init import initial_responsibilities
from bayes_gmm.em_baseline._mstep import parameters_from_responsibilities
from bayes_gmm.em_baseline._starts import spawn_generators
from bayes_gmm.exceptions import IllConditionedCovarianceError

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
REG_COVAR = 1e-6
TOL = 1e-8
REL_TOL = 1e-6
#: Reaching mclust's log-likelihood: at most this far below it (mclust's EM stops at a relative change of
#: 1e-5, so a converged fit of the same maximum is at or above it).
MCLUST_TOL = 1e-3
#: (data set, K) -> best log-likelihood of 200 random starts of scikit-learn's GaussianMixture ("full").
ORACLE = {
    ("faithful", 3): -1114.439875,
    ("galaxies", 4): -197.453764,
    ("galaxies", 5): -190.071151,
    ("faithful", 4): -1106.030232,
}
INITS = ("kmeans", "hc")


def load(name):
    return pd.read_csv(DATA / f"{name}.csv").to_numpy(dtype=np.float64)


def kmeans_restarts(X, k, seed, n_init=5, tol=TOL, covariance_type="full"):
    """Plain k-means restarts: n_init Lloyd's k-means starts, each run to convergence; the best is returned."""
    best = None
    with threadpool_limits(limits=1, user_api="blas"):
        for rng in spawn_generators(seed_sequence(seed), n_init):
            resp = initial_responsibilities(X, k, "kmeans", rng)
            params = parameters_from_responsibilities(X, resp, REG_COVAR, covariance_type)
            try:
                result = _run_em(X, *params, covariance_type, 1000, tol, REG_COVAR)
            except IllConditionedCovarianceError:
                continue
            if best is None or result.log_likelihood > best.log_likelihood:
                best = result
    return best


def default_fit(init):
    def fit(X, k, seed, n_init=5, tol=TOL, covariance_type="full"):
        return fit_em(
            X, k, covariance_type=covariance_type, init=init, n_init=n_init, tol=tol, random_seed=seed
        )

    return fit


def mclust_fixtures():
    folder = DATA / "mclust"
    for path in sorted(folder.glob("mclust_fits_*.json")) + sorted(folder.glob("mclust_hc_fits_*.json")):
        ref = json.loads(path.read_text())
        fits = [entry for entry in ref["fits"] if entry["status"] == "ok"]
        yield ref["dataset"], pd.read_csv(DATA / ref["csv"]).to_numpy(dtype=np.float64), fits


def mclust_table(seeds):
    print(f"Default fits reaching R mclust's log-likelihood (within {MCLUST_TOL:g}), seeds {list(seeds)}")
    header = f"{'data':<11} {'n x d':>9} {'fits':>5} | " + " ".join(f"{'reached ' + i:>14}" for i in INITS)
    header += " | " + " ".join(f"{i + ' s/fit':>10}" for i in INITS) + f" {'hc/kmeans':>9}"
    print(header)
    print("-" * len(header))
    totals = {init: [0, 0, 0.0] for init in INITS}
    for name, X, fits in mclust_fixtures():
        reached, seconds = {}, {}
        for init in INITS:
            count, start = 0, time.perf_counter()
            for entry in fits:
                for seed in seeds:
                    _TREES.clear()  # the time of a fit on data not seen before, its clustering included
                    try:
                        fit = fit_em(
                            X, entry["G"], covariance_type=entry["model"], init=init, random_seed=seed
                        )
                    except IllConditionedCovarianceError:
                        continue
                    count += fit.log_likelihood >= entry["fit"]["loglik"] - MCLUST_TOL
            seconds[init] = (time.perf_counter() - start) / (len(fits) * len(seeds))
            reached[init] = count
            totals[init][0] += count
            totals[init][1] += len(fits) * len(seeds)
            totals[init][2] += seconds[init] * len(fits) * len(seeds)
        cases = len(fits) * len(seeds)
        shape = f"{X.shape[0]}x{X.shape[1]}"
        print(
            f"{name:<11} {shape:>9} {cases:>5} | "
            + " ".join(f"{reached[i]:>7} ({reached[i] / cases:>4.0%})" for i in INITS)
            + " | "
            + " ".join(f"{seconds[i]:>10.3f}" for i in INITS)
            + f" {seconds['hc'] / seconds['kmeans']:>9.2f}"
        )
    (hit_k, n_k, t_k), (hit_h, n_h, t_h) = totals["kmeans"], totals["hc"]
    print(
        f"{'all':<11} {'':>9} {n_k:>5} | {hit_k:>7} ({hit_k / n_k:>4.0%}) {hit_h:>7} ({hit_h / n_h:>4.0%}) | "
        f"{t_k / n_k:>10.3f} {t_h / n_h:>10.3f} {t_h / t_k:>9.2f}"
    )


def recompute_oracle(X, k):
    from sklearn.mixture import GaussianMixture

    best = -np.inf
    for seed in range(200):
        gmm = GaussianMixture(
            k,
            covariance_type="full",
            init_params="random",
            tol=1e-10,
            max_iter=10_000,
            reg_covar=REG_COVAR,
            random_state=seed,
        ).fit(X)
        if np.linalg.eigvalsh(gmm.covariances_).min() > 2 * REG_COVAR:
            best = max(best, gmm.score(X) * len(X))
    return best


def simulated(n_samples, n_features, n_components, seed):
    """Overlapping, unequally weighted components with random covariances."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.5, size=(n_components, n_features))
    labels = rng.choice(n_components, size=n_samples, p=rng.dirichlet(np.full(n_components, 3.0)))
    scales = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    scales += 0.5 * np.eye(n_features)
    noise = rng.standard_normal((n_samples, n_features))
    return centers[labels] + np.einsum("nij,nj->ni", scales[labels], noise)


def reach_table(seeds, recompute):
    methods = {"k-means restarts": kmeans_restarts} | {f"init={i}": default_fit(i) for i in INITS}
    print(
        f"\nReached the best known maximum (within {REL_TOL:g} relative), out of {len(seeds)} seeds, n_init=5"
    )
    header = f"{'data':<10} {'K':>2} {'best known':>13} | " + " ".join(f"{m:>16}" for m in methods)
    header += " | " + " ".join(f"{m + ' s':>18}" for m in methods)
    print(header)
    print("-" * len(header))
    for (name, k), best in ORACLE.items():
        X = load(name)
        if recompute:
            best = recompute_oracle(X, k)
        counts, times = {}, {}
        for label, fit in methods.items():
            start = time.perf_counter()
            log_liks = [fit(X, k, seed).log_likelihood for seed in seeds]
            times[label] = (time.perf_counter() - start) / len(seeds)
            counts[label] = sum(ll >= best - REL_TOL * abs(best) for ll in log_liks)
        print(
            f"{name:<10} {k:>2} {best:>13.6f} | "
            + " ".join(f"{counts[m]:>16}" for m in methods)
            + " | "
            + " ".join(f"{times[m]:>18.3f}" for m in methods)
        )


def timing_table(repeats):
    print(f"\nTime of one default fit (n_init=5, tol=1e-6; best of {repeats}), seconds")
    print(
        f"{'data':<22} {'K':>2} | {'kmeans':>7} {'hc':>7} {'hc/km':>7} | {'kmeans logL':>14} {'hc logL':>14}"
    )
    cases = [("faithful", load("faithful"), 3, 20)]
    cases += [("simulated 100k x 5", simulated(100_000, 5, k, seed=1), k, 1) for k in (4, 6)]
    for name, X, k, inner in cases:
        results = {}
        for init in INITS:
            best_time, result = np.inf, None
            for _ in range(repeats):
                start = time.perf_counter()
                for seed in range(inner):
                    _TREES.clear()
                    result = fit_em(X, k, init=init, random_seed=seed)
                best_time = min(best_time, (time.perf_counter() - start) / inner)
            results[init] = (best_time, result.log_likelihood)
        (t_k, ll_k), (t_h, ll_h) = results["kmeans"], results["hc"]
        print(f"{name:<22} {k:>2} | {t_k:>7.3f} {t_h:>7.3f} {t_h / t_k:>7.2f} | {ll_k:>14.3f} {ll_h:>14.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=20, help="seeds per data set, best known maxima (default 20)"
    )
    parser.add_argument(
        "--mclust-seeds", type=int, default=1, help="seeds per mclust fit (default 1: seed 0)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (default 3)")
    parser.add_argument("--recompute-oracle", action="store_true", help="recompute the best known maxima")
    parser.add_argument("--skip-mclust", action="store_true", help="leave out the mclust table (minutes)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for init in INITS:  # compile the numba kernels before timing
        fit_em(load("faithful"), 2, init=init, random_seed=0)
    if not args.skip_mclust:
        mclust_table(range(args.mclust_seeds))
    reach_table(range(args.seeds), args.recompute_oracle)
    timing_table(args.repeats)


if __name__ == "__main__":
    main()
