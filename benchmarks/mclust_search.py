"""The full model search, mclust's 14 covariance models x K = 1..9, ours against R's ``mclust::mclustBIC``.

Both search the same data in the same run: a 10,000 x 5 mixture of 4 elongated Gaussians, written to a
temporary CSV that R reads. Ours is :func:`bayes_gmm.em_baseline.search_models` with its defaults
(5 EM starts per fit, emEM screening); mclust's is ``mclustBIC(X, G = 1:9)`` with its defaults (one EM
run per fit, started from model-based hierarchical clustering). Prints both wall times, their ratio, and
the best three (model, K) of each by BIC. Needs ``Rscript`` with the mclust package (Debian:
``apt-get install r-cran-mclust``).

    python benchmarks/mclust_search.py                  # the issue's case: 10,000 x 5, K = 1..9
    python benchmarks/mclust_search.py --n 2000 --k 4   # a quick run
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bayes_gmm.em_baseline import search_models

R_SEARCH = """
suppressPackageStartupMessages(library(mclust))
X <- as.matrix(read.csv("{csv}"))
started <- proc.time()[["elapsed"]]
bic <- mclustBIC(X, G = 1:{k}, verbose = FALSE)
cat("seconds", proc.time()[["elapsed"]] - started, "\\n")
top <- summary(bic, X)
print(summary(bic))
"""


def make_data(n_samples: int, n_features: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(4, n_features))
    labels = rng.integers(4, size=n_samples)
    scales = rng.normal(size=(4, n_features, n_features)) / np.sqrt(n_features) + np.eye(n_features)
    return centers[labels] + np.einsum(
        "nij,nj->ni", scales[labels], rng.standard_normal((n_samples, n_features))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=5)
    parser.add_argument("--k", type=int, default=9)
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript is not installed: apt-get install r-cran-mclust")
    X = make_data(args.n, args.d)
    search_models(X[:500], 2, ("EII", "VVV"), random_seed=0)  # numba compilation, not timed
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        np.savetxt(csv, X, delimiter=",", header=",".join(f"x{j}" for j in range(args.d)), comments="")
        started = time.perf_counter()
        r = subprocess.run(
            ["Rscript", "-e", R_SEARCH.format(csv=csv, k=args.k)], capture_output=True, text=True, check=True
        )
        r_wall = time.perf_counter() - started
    r_seconds = float(next(line.split()[1] for line in r.stdout.splitlines() if line.startswith("seconds")))
    started = time.perf_counter()
    ours = search_models(X, args.k, random_seed=0)
    our_seconds = time.perf_counter() - started
    print(f"data: {args.n} x {args.d}, 14 models x K = 1..{args.k}")
    print(f"ours (search_models):   {our_seconds:8.1f} s")
    print(f"mclust (mclustBIC):     {r_seconds:8.1f} s   (Rscript wall incl. start-up {r_wall:.1f} s)")
    print(f"ratio ours / mclust:    {our_seconds / r_seconds:8.2f}")
    print("\nours, best 3 by BIC (lower is better; mclust's BIC is the negative):")
    print(ours.best(3)[["bic", "log_likelihood", "n_parameters"]].to_string())
    print("\nmclust:")
    print("\n".join(line for line in r.stdout.splitlines() if not line.startswith("seconds")))


if __name__ == "__main__":
    main()
