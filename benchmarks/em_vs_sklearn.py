"""Time per EM iteration: bayes_gmm.em_baseline.fit_em against scikit-learn's GaussianMixture.

Both fits start from the same parameters and run the same number of iterations (tol=0). The time per
iteration is the difference between a long and a short run divided by the difference in iterations, so
start-up work on either side (validation, numba dispatch, scikit-learn's initialisation pass) cancels.
Each timing is the best of `--repeats` runs. Prints one row per case, with the ratio and the final
log-likelihoods of both fits.

    python benchmarks/em_vs_sklearn.py            # the two cases of issue 2
    python benchmarks/em_vs_sklearn.py --quick    # smaller data, for a smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture

from bayes_gmm.em_baseline import fit_em

CASES = [  # (n_samples, n_features, n_components, covariance_type)
    (1_000_000, 2, 3, "full"),
    (100_000, 10, 5, "full"),
    (1_000_000, 2, 3, "diag"),
    (100_000, 10, 5, "tied"),
]


def make_data(n_samples, n_features, n_components, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    scales = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    noise = rng.standard_normal((n_samples, n_features))
    return centers[labels] + np.einsum("nij,nj->ni", scales[labels] + np.eye(n_features), noise)


def initial_params(X, n_components, covariance_type, seed):
    start = fit_em(
        X[:20_000], n_components, covariance_type=covariance_type, n_init=1, max_iter=1, random_seed=seed
    )
    return {
        "weights": np.asarray(start.weights),
        "means": np.asarray(start.means),
        "covariances": np.asarray(start.covariances),
    }, start.precisions_cholesky


def run_ours(X, params, covariance_type, n_iter):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_em(
            X,
            len(params["weights"]),
            covariance_type=covariance_type,
            initial_params=params,
            n_init=1,
            max_iter=n_iter,
            tol=0.0,
        )
    return time.perf_counter() - t0, result.log_likelihood


def run_sklearn(X, params, prec_chol, covariance_type, n_iter):
    precisions = {
        "full": lambda p: p @ np.swapaxes(p, 1, 2),
        "tied": lambda p: p @ p.T,
        "diag": lambda p: p**2,
        "spherical": lambda p: p**2,
    }[covariance_type](np.asarray(prec_chol))
    gm = GaussianMixture(
        len(params["weights"]),
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=n_iter,
        weights_init=params["weights"],
        means_init=params["means"],
        precisions_init=precisions,
        init_params="random_from_data",
        random_state=0,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        gm.fit(X)
    return time.perf_counter() - t0, float(gm.score(X) * X.shape[0])


def per_iteration(run, short, long, repeats):
    t_short = min(run(short)[0] for _ in range(repeats))
    t_long, loglik = np.inf, None
    for _ in range(repeats):
        t, loglik = run(long)
        t_long = min(t_long, t)
    return (t_long - t_short) / (long - short), loglik


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer samples per case")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20, help="EM iterations of the long run")
    args = parser.parse_args()
    short, long = 2, args.iterations

    print(
        f"{'case':<34}{'ours ms/it':>11}{'sklearn ms/it':>15}{'speed-up':>10}"
        f"{'logL ours':>20}{'logL sklearn':>20}{'rel. diff':>11}"
    )
    for n_samples, n_features, n_components, cov_type in CASES:
        n_samples = n_samples // 10 if args.quick else n_samples
        X = make_data(n_samples, n_features, n_components, seed=1)
        params, prec_chol = initial_params(X, n_components, cov_type, seed=2)
        run_ours(X, params, cov_type, 1)  # compile / load the numba kernel outside the timing
        ours, ll_ours = per_iteration(lambda n: run_ours(X, params, cov_type, n), short, long, args.repeats)
        theirs, ll_sk = per_iteration(
            lambda n: run_sklearn(X, params, prec_chol, cov_type, n), short, long, args.repeats
        )
        label = f"{n_samples:,} x {n_features}, K={n_components}, {cov_type}"
        print(
            f"{label:<34}{ours * 1e3:>11.1f}{theirs * 1e3:>15.1f}{theirs / ours:>9.1f}x"
            f"{ll_ours:>20.8f}{ll_sk:>20.8f}{abs(ll_ours - ll_sk) / abs(ll_sk):>11.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
