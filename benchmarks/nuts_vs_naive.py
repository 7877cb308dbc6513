"""NUTS on a 3-component 2-D GMM under PyMC 6 + nutpie: the naive model vs bayes-gmm's, in one run.

Every case runs in a fresh Python process, first with empty compilation caches ("cold": PyTensor's and
numba's caches in a new temporary folder, as right after an install) and then again with the caches that
run left ("warm", as every later run). Each prints wall time (import, model build, compile, sampling and
post-processing), compile time, sampling time, minimum bulk ESS of the component means, worst R-hat and
divergences where they apply:

    trivial      a 3-parameter PyMC model compiled and sampled by nutpie (4 x (1000 + 1000)): the floor
                 that any nutpie fit pays (import, compile, sample);
    naive        the model a PyMC 6 user writes from the docs: pm.Mixture over pm.MvNormal components
                 with LKJCholeskyCov priors, an ordered first mean coordinate, default sampler (nutpie)
                 and default init, on the benchmark data (999 x 2, 3 well-separated full-covariance
                 components), 4 chains x (1000 tune + 1000 draws);
    ours         bayes_gmm.inference.fit_gmm on the same data and settings (EM start, relabelling and the
                 pointwise log-likelihood included);
    demo         the README's main job, ``bayes-gmm fit --demo`` (Old Faithful, 2 full components, summary,
                 netCDF, plots), as a subprocess;
    select_k     ``select_k`` on Old Faithful, k = 1..6, full covariance, default NUTS settings.

Goals (issue 10): ours' sampling <= 1.5 s; warm demo <= 2x the warm trivial wall; demo after a fresh
install (cold) <= 45 s; warm select_k <= 45 s.

Run: python benchmarks/nuts_vs_naive.py [--cases trivial,naive,ours,demo,select_k] [--no-cold]
     [--advi-n 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

TRUE_MEANS = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.0]])
TRUE_COVS = np.array([[[1.0, 0.5], [0.5, 1.0]], [[1.5, -0.4], [-0.4, 0.6]], [[0.8, 0.0], [0.0, 0.8]]])
CASES = ("trivial", "naive", "ours", "demo", "select_k")
SAMPLING = {"draws": 1000, "tune": 1000, "chains": 4}


def simulate(n_per_component: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.multivariate_normal(m, c, n_per_component) for m, c in zip(TRUE_MEANS, TRUE_COVS, strict=True)]
    )


def naive_model(X: np.ndarray, k: int = 3):
    import pymc as pm

    d = X.shape[1]
    with pm.Model() as model:
        weights = pm.Dirichlet("weights", np.ones(k))
        # Ordered first coordinate of the means, the usual identifiability constraint from the docs, which
        # also give it distinct initial values (an ordered transform cannot start from equal ones).
        first = pm.Normal(
            "means_first",
            0.0,
            10.0,
            shape=k,
            transform=pm.distributions.transforms.ordered,
            initval=np.linspace(-1.0, 1.0, k),
        )
        rest = pm.Normal("means_rest", 0.0, 10.0, shape=(k, d - 1))
        components = []
        for j in range(k):
            chol, _, _ = pm.LKJCholeskyCov(f"chol_{j}", n=d, eta=2.0, sd_dist=pm.HalfNormal.dist(2.0))
            mu = pm.math.concatenate([first[j : j + 1], rest[j]])
            components.append(pm.MvNormal.dist(mu=mu, chol=chol))
        pm.Mixture("obs", w=weights, comp_dists=components, observed=X)
    return model


def _nutpie_case(build_model, seed: int, var_names) -> dict:
    import nutpie

    from bayes_gmm.inference._arviz import convergence_diagnostics

    started = time.perf_counter()
    compiled = nutpie.compile_pymc_model(build_model())
    compiled_at = time.perf_counter()
    fit = nutpie.sample(compiled, seed=seed, cores=2, progress_bar=False, save_warmup=False, **SAMPLING)
    sampled_at = time.perf_counter()
    found = convergence_diagnostics(fit.posterior, var_names)
    return {
        "compile_s": compiled_at - started,
        "sampling_s": sampled_at - compiled_at,
        "min_ess": found["ess_bulk_min"],
        "rhat": found["rhat_max"],
        "divergences": int(fit.sample_stats["diverging"].sum()),
    }


def child(case: str, seed: int) -> dict:
    """Run one case in this (fresh) process and return its figures; wall time counts from start-up."""
    if case == "trivial":
        import pymc as pm

        def build():
            with pm.Model() as model:
                mu = pm.Normal("mu", 0.0, 1.0, shape=3)
                pm.Normal("y", mu, 1.0, observed=np.zeros((5, 3)))
            return model

        return _nutpie_case(build, seed, ["mu"])
    if case == "naive":
        X = simulate(333, seed)
        return _nutpie_case(lambda: naive_model(X), seed, ["means_first", "means_rest"])
    if case == "ours":
        from bayes_gmm.inference import fit_gmm

        fit = fit_gmm(simulate(333, seed), 3, covariance_type="full", random_seed=seed, **SAMPLING)
        attrs = fit.attrs
        return {
            "compile_s": attrs["compile_time_s"],
            "sampling_s": attrs["sampling_time_s"] - attrs["compile_time_s"],
            "min_ess": attrs["ess_bulk_min"],
            "rhat": attrs["rhat_max"],
            "divergences": attrs["n_divergences"],
        }
    if case == "demo":
        with tempfile.TemporaryDirectory() as out:
            subprocess.run(
                [sys.executable, "-m", "bayes_gmm.cli", "fit", "--demo", "--out", out, "-q"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        return {}
    if case == "select_k":
        from bayes_gmm.datasets import load_faithful
        from bayes_gmm.inference import select_k

        selection = select_k(load_faithful(), 6, covariance_type="full", random_seed=seed)
        return {"rhat": float(selection.table["rhat_max"].max()), "picks": selection.picks}
    raise ValueError(f"unknown case {case!r}; choose from {CASES}")


def run_case(case: str, seed: int, cache_dir: Path | None) -> dict:
    """Run `case` in a child process, its compilation caches in `cache_dir` (None: the usual ones)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir / "numba")
        env["PYTENSOR_FLAGS"] = f"base_compiledir={cache_dir / 'pytensor'}"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--child", case, "--seed", str(seed)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["wall_s"] = time.perf_counter() - started
    return figures


def _row(case: str, cache: str, figures: dict) -> str:
    def number(key, fmt):
        value = figures.get(key)
        return format(value, fmt) if isinstance(value, (int, float)) else "-"

    return (
        f"{case:9s} {cache:5s} {number('wall_s', '8.1f'):>8s} {number('compile_s', '9.1f'):>9s} "
        f"{number('sampling_s', '10.2f'):>10s} {number('min_ess', '8.0f'):>8s} {number('rhat', '7.3f'):>7s} "
        f"{number('divergences', 'd'):>5s}" + (f"  picks {figures['picks']}" if "picks" in figures else "")
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {CASES}")
    parser.add_argument("--no-cold", action="store_true", help="skip the runs with empty caches")
    parser.add_argument("--advi-n", type=int, default=0, help="points for an ADVI timing (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.child:
        print(json.dumps(child(args.child, args.seed)))
        return
    cases = [c for c in args.cases.split(",") if c]
    print(
        f"999 x 2, 3 components, full covariance, 4 chains x (1000 tune + 1000 draws), {os.cpu_count()} cores"
    )
    print(
        f"{'case':9s} {'cache':5s} {'wall s':>8s} {'compile s':>9s} {'sampling s':>10s} {'min ESS':>8s} "
        f"{'R-hat':>7s} {'div.':>5s}"
    )
    walls = {}
    with tempfile.TemporaryDirectory() as cache_root:
        for case in cases:
            # Cold: a cache folder of the case's own, empty; warm: the same folder again. With --no-cold,
            # the usual caches, filled by a first run if they were not already.
            cache_dir = None if args.no_cold else Path(cache_root) / case
            if args.no_cold:
                run_case(case, args.seed, cache_dir)
            for cache in ([] if args.no_cold else ["cold"]) + ["warm"]:
                figures = run_case(case, args.seed, cache_dir)
                walls[case, cache] = figures["wall_s"]
                print(_row(case, cache, figures), flush=True)
    if ("demo", "warm") in walls and ("trivial", "warm") in walls:
        print(
            f"\nwarm demo / warm trivial nutpie model: {walls['demo', 'warm'] / walls['trivial', 'warm']:.2f}x "
            f"(goal <= 2)"
        )
    if args.advi_n:
        from bayes_gmm.inference import fit_gmm

        big = simulate(args.advi_n // 3, args.seed + 1)
        start = time.perf_counter()
        fit = fit_gmm(
            big, 3, method="advi", minibatch_size=1000, draws=500, log_likelihood=False, random_seed=args.seed
        )
        wall = time.perf_counter() - start
        means = fit.posterior["means"].mean(("chain", "draw")).to_numpy()
        order = np.argsort(means[:, 0] + 10 * means[:, 1])
        err = np.abs(means[order] - TRUE_MEANS[np.argsort(TRUE_MEANS[:, 0] + 10 * TRUE_MEANS[:, 1])]).max()
        print(
            f"\nADVI (mean-field, minibatch 1000) on {len(big):,} x 2, 3 components, full: {wall:.1f} s "
            f"wall incl. EM start; {fit.attrs['advi_iterations']} iterations, converged="
            f"{bool(fit.attrs['advi_converged'])}; max |posterior mean - true mean| = {err:.3f}"
        )


if __name__ == "__main__":
    main()
