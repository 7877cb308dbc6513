"""How often fit_em's restarts reach the best known maximum, before and after the emEM screening (issue 12).

"old" is the default before issue 12: `n_init` starts, each Lloyd's k-means from k-means++ seeds, all run
to convergence (reproduced here with the package's own start and EM functions, as the old loop ran
them). "new" is today's ``fit_em`` default (the k-means start plus ``n_init - 1`` of ``4 * n_init - 1``
k-means++ starts screened by 10 EM updates). A fit reaches the best known maximum when its log-likelihood
is within 1e-6 (relative) of it; tol=1e-8 for both so that converged fits are that close. The best known
maxima are those of tests/test_em_restarts.py: the best of 200 random starts of scikit-learn's
GaussianMixture (``--recompute-oracle`` recomputes them, which takes several minutes). Then the time of
one default fit (old and new) on faithful and on 100,000 x 5 simulated data.

    python benchmarks/em_restarts.py               # 20 seeds
    python benchmarks/em_restarts.py --seeds 5     # quicker
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bayes_gmm.em_baseline import fit_em
from bayes_gmm.em_baseline._fit import _run_em, _spawn_generators
from bayes_gmm.em_baseline._init import initial_responsibilities
from bayes_gmm.em_baseline._mstep import parameters_from_responsibilities
from bayes_gmm.exceptions import IllConditionedCovarianceError

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
REG_COVAR = 1e-6
TOL = 1e-8
REL_TOL = 1e-6
#: (data set, K) -> best log-likelihood of 200 random starts of scikit-learn's GaussianMixture ("full").
ORACLE = {
    ("faithful", 3): -1114.439875,
    ("galaxies", 4): -197.453764,
    ("galaxies", 5): -190.071151,
    ("faithful", 4): -1106.030232,
}


def load(name):
    return pd.read_csv(DATA / f"{name}.csv").to_numpy(dtype=np.float64)


def old_default(X, k, seed, n_init=5, tol=TOL, covariance_type="full"):
    """The pre-issue-12 default: n_init k-means starts, each run to convergence; the best is returned."""
    best = None
    with threadpool_limits(limits=1, user_api="blas"):
        for rng in _spawn_generators(seed, n_init):
            resp = initial_responsibilities(X, k, "kmeans", rng)
            params = parameters_from_responsibilities(X, resp, REG_COVAR, covariance_type)
            try:
                result = _run_em(X, *params, covariance_type, 1000, tol, REG_COVAR)
            except IllConditionedCovarianceError:
                continue
            if best is None or result.log_likelihood > best.log_likelihood:
                best = result
    return best


def new_default(X, k, seed, n_init=5, tol=TOL, covariance_type="full"):
    return fit_em(X, k, covariance_type=covariance_type, n_init=n_init, tol=tol, random_seed=seed)


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
    print(f"Reached the best known maximum (within {REL_TOL:g} relative), out of {len(seeds)} seeds")
    header = f"{'data':<10} {'K':>2} {'best known':>13} | {'old n_init=5':>12} {'new n_init=5':>12} | "
    header += f"{'old n_init=20':>13} {'new n_init=20':>13} | {'old s/fit':>9} {'new s/fit':>9}"
    print(header)
    print("-" * len(header))
    for (name, k), best in ORACLE.items():
        X = load(name)
        if recompute:
            best = recompute_oracle(X, k)
        counts, times = {}, {}
        for label, fit in (("old", old_default), ("new", new_default)):
            for n_init in (5, 20):
                start = time.perf_counter()
                log_liks = [fit(X, k, seed, n_init=n_init).log_likelihood for seed in seeds]
                times[label, n_init] = (time.perf_counter() - start) / len(seeds)
                counts[label, n_init] = sum(ll >= best - REL_TOL * abs(best) for ll in log_liks)
        print(
            f"{name:<10} {k:>2} {best:>13.6f} | {counts['old', 5]:>12} {counts['new', 5]:>12} | "
            f"{counts['old', 20]:>13} {counts['new', 20]:>13} | "
            f"{times['old', 5]:>9.3f} {times['new', 5]:>9.3f}"
        )


def timing_table(repeats):
    print(f"\nTime of one default fit (n_init=5, tol=1e-6; best of {repeats}), seconds")
    print(f"{'data':<22} {'K':>2} | {'old':>7} {'new':>7} {'new/old':>7} | {'old logL':>14} {'new logL':>14}")
    cases = [("faithful", load("faithful"), 3, 20)]
    cases += [("simulated 100k x 5", simulated(100_000, 5, k, seed=1), k, 1) for k in (4, 6)]
    for name, X, k, inner in cases:
        results = {}
        for label, fit in (("old", old_default), ("new", new_default)):
            best_time, result = np.inf, None
            for _ in range(repeats):
                start = time.perf_counter()
                for seed in range(inner):
                    result = fit(X, k, seed, tol=1e-6)
                best_time = min(best_time, (time.perf_counter() - start) / inner)
            results[label] = (best_time, result.log_likelihood)
        (t_old, ll_old), (t_new, ll_new) = results["old"], results["new"]
        print(
            f"{name:<22} {k:>2} | {t_old:>7.3f} {t_new:>7.3f} {t_new / t_old:>7.2f} | {ll_old:>14.3f} {ll_new:>14.3f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per data set (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (default 3)")
    parser.add_argument("--recompute-oracle", action="store_true", help="recompute the best known maxima")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    new_default(load("galaxies"), 2, 0)  # compile the numba kernels before timing
    reach_table(range(args.seeds), args.recompute_oracle)
    timing_table(args.repeats)


if __name__ == "__main__":
    main()
