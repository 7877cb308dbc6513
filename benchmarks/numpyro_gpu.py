"""The optional JAX back end (numpyro NUTS) on whatever device JAX sees: a GPU where one is present.

Fits the same simulated 2-D, K=3, full-covariance mixture with ``fit_gmm(..., backend="numpyro")`` at the
sizes given, and prints JAX's devices, wall time, R-hat, ESS, divergences and the posterior means next to
the simulated truth and to EM. Needs ``pip install ".[numpyro]"`` (and a CUDA build of jaxlib for a GPU).

    python benchmarks/numpyro_gpu.py                        # n = 2,000 and 100,000
    python benchmarks/numpyro_gpu.py --sizes 2000 --backend nutpie   # the same on the default back end
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
TRUE_COVARIANCES = np.array([[[1.0, 0.6], [0.6, 1.0]], [[0.5, 0.0], [0.0, 1.5]], [[1.0, -0.4], [-0.4, 0.8]]])


def simulate(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    chol = np.linalg.cholesky(TRUE_COVARIANCES)
    return TRUE_MEANS[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,100000")
    parser.add_argument("--backend", default="numpyro")
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    if args.backend == "numpyro":
        import jax

        print("JAX", jax.__version__, "devices:", jax.devices())
    from bayes_gmm.em_baseline import fit_em
    from bayes_gmm.inference import fit_gmm

    for n in (int(s) for s in args.sizes.split(",")):
        X = simulate(n)
        em = fit_em(X, 3, random_seed=0)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = fit_gmm(
                X, 3, em=em, backend=args.backend, draws=args.draws, tune=args.draws, random_seed=0
            )
        wall = time.perf_counter() - started
        a = idata.attrs
        means = idata.posterior["means"].mean(("chain", "draw")).to_numpy()
        order = np.argsort(means[:, 0] + 10 * means[:, 1])
        truth = TRUE_MEANS[np.argsort(TRUE_MEANS[:, 0] + 10 * TRUE_MEANS[:, 1])]
        em_means = em.means[np.argsort(em.means[:, 0] + 10 * em.means[:, 1])]
        print(
            f"n={n}: backend {a['backend']}, wall {wall:.1f} s (sampling {a['sampling_time_s']:.1f} s), "
            f"R-hat {a['rhat_max']:.3f}, min ESS {min(a['ess_bulk_min'], a['ess_tail_min']):.0f}, "
            f"{a.get('n_divergences', 0)} divergences"
        )
        print(
            f"  posterior means - truth: max {np.abs(means[order] - truth).max():.4f}; "
            f"- EM: max {np.abs(means[order] - em_means).max():.4f}"
        )


if __name__ == "__main__":
    main()
