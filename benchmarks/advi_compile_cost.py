"""ADVI's cost on the model kernel vs PyMC's ``pm.fit``: a first fit and a new K in one process, cold and warm.

For each back end (``backend="kernel"``, the default, and ``backend="pymc"``), a new process with empty
compilation caches (numba's cache and PyTensor's ``base_compiledir`` in a new temporary folder, as right after
an install) runs ``fit_gmm(load_faithful(), 2, method="advi", random_seed=0)`` and then the same with K=3; a
second new process repeats the pair with the caches the first left ("warm"). Then, warm, the time per
iteration: for the kernel, ``run_kernel_advi`` with the stopping rule off; for PyMC, ``pm.fit`` of 6,000
minus 1,000 iterations (its compile cancels out); both on Old Faithful, K=2, full.

Run: python benchmarks/advi_compile_cost.py [--backends kernel,pymc]
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

CHILD = "child"


def _child(backend: str) -> None:
    from bayes_gmm.datasets import load_faithful
    from bayes_gmm.inference import fit_gmm

    rows = []
    for k in (2, 3):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_gmm(load_faithful(), k, method="advi", backend=backend, random_seed=0)
        rows.append(
            {
                "k": k,
                "wall_s": round(time.perf_counter() - started, 2),
                "advi_iterations": fit.attrs["advi_iterations"],
                "converged": fit.attrs["converged"],
                "elbo_final": round(fit.attrs["elbo_final"], 2),
            }
        )
    print(json.dumps(rows))


def _per_iteration(backend: str) -> None:
    import numpy as np

    from bayes_gmm.datasets import load_faithful
    from bayes_gmm.inference._advi import run_advi
    from bayes_gmm.inference._advi_kernel import ModelDensity, run_kernel_advi
    from bayes_gmm.inference._fit import _em_start
    from bayes_gmm.inference._start import start_values
    from bayes_gmm.models import build_model
    from bayes_gmm.models._unconstrained import to_unconstrained

    X = np.asarray(load_faithful())
    model = build_model(X, 2)
    start = start_values(_em_start(None, X, 2, "full", random_seed=0), "full")
    options = {"method": "advi", "tolerance": 0.0, "learning_rate": 0.01, "progressbar": False}
    if backend == "kernel":
        density = ModelDensity(model)
        started = time.perf_counter()
        run_kernel_advi(
            density, [to_unconstrained(start, "full")], max_iter=5000, rng=np.random.default_rng(0), **options
        )
        seconds = (time.perf_counter() - started) / 5000
    else:
        times = []
        for n in (1000, 6000):
            started = time.perf_counter()
            run_advi(model, [start], max_iter=n, random_seed=0, **options)
            times.append(time.perf_counter() - started)
        seconds = (times[1] - times[0]) / 5000
    print(json.dumps({"per_iteration_us": round(1e6 * seconds, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="kernel,pymc")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as folder:
            env = dict(os.environ)
            env["NUMBA_CACHE_DIR"] = os.path.join(folder, "numba")
            env["PYTENSOR_FLAGS"] = f"base_compiledir={os.path.join(folder, 'pytensor')}"
            for label in ("cold", "warm"):
                out = subprocess.run(
                    [sys.executable, __file__, CHILD, backend],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                print(backend, label, out.stdout.strip().splitlines()[-1], flush=True)
            out = subprocess.run(
                [sys.executable, __file__, "per-iteration", backend],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            print(backend, "warm", out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == CHILD:
        _child(sys.argv[2])
    elif len(sys.argv) > 2 and sys.argv[1] == "per-iteration":
        _per_iteration(sys.argv[2])
    else:
        main()
