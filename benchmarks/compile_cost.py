"""What a user exploring data pays to compile: a sequence of model shapes in one process, cold and warm.

In one process with empty compilation caches (PyTensor's ``base_compiledir`` and numba's cache in a new
temporary folder, as right after an install), first the trivial 3-parameter PyMC model of
``benchmarks/nuts_vs_naive.py`` is compiled and sampled by nutpie (the floor any nutpie fit pays), then
``fit_gmm`` runs this sequence, each with default settings (4 chains x (1000 tune + 1000 draws)):

    K=2 full, K=3 full, K=2 diag, K=5 full (Old Faithful), D=3 full (iris' first three columns, K=3),
    K=3 tied, K=2 EEI (iris' first three columns)

Each row gives the fit's wall time, its compile time (``idata.attrs["compile_time_s"]``: building nutpie's
compiled model) and its sampling time. The same sequence then runs again in a new process with the caches
the first left ("warm"). With ``--pymc`` the first two shapes also run with PyMC's own sampler
(``backend="pymc"``), which compiles the model's PyTensor graph per shape.

Goals on 2 cores: every fit after the first compiles in <= 0.3x the trivial model's compile; the first fit's
compile <= 1.5x it.

The first fit's kernel is compiled in another process while its EM start runs, and that process goes on to
compile the other family of covariance structures (full/tied vs the diagonal ones) in the background, so
the K=2 diag row after it finds its kernel compiled.

Run: python benchmarks/compile_cost.py [--pymc] [--cold-only] [--seed 1]
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

SEQUENCE = [
    (2, "full", "faithful"),
    (3, "full", "faithful"),
    (2, "diag", "faithful"),
    (5, "full", "faithful"),
    (3, "full", "iris3"),
    (3, "tied", "faithful"),
    (2, "EEI", "iris3"),
]


def _data(name: str):
    from sklearn.datasets import load_iris

    from bayes_gmm.datasets import load_faithful

    if name == "faithful":
        return load_faithful()
    return load_iris(as_frame=True).data.iloc[:, :3]


def child(seed: int, pymc: bool) -> list[dict]:
    """Run the trivial model and the sequence in this (fresh) process; one row per step."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bayes_gmm.inference import fit_gmm
    from nuts_vs_naive import child as naive_child

    started = time.perf_counter()
    trivial = naive_child("trivial", seed)
    rows = [
        {
            "fit": "trivial model",
            "wall_s": time.perf_counter() - started,
            "compile_s": trivial["compile_s"],
            "sampling_s": trivial["sampling_s"],
        }
    ]
    steps = [(k, cov, data, "nutpie") for k, cov, data in SEQUENCE]
    if pymc:
        steps += [(k, cov, data, "pymc") for k, cov, data in SEQUENCE[:2]]
    for k, covariance_type, data, backend in steps:
        X = _data(data)
        started = time.perf_counter()
        fit = fit_gmm(X, k, covariance_type=covariance_type, backend=backend, random_seed=seed)
        wall = time.perf_counter() - started
        compile_s = fit.attrs.get("compile_time_s")
        rows.append(
            {
                "fit": f"K={k} {covariance_type} {X.shape[0]}x{X.shape[1]} {backend}",
                "wall_s": wall,
                "compile_s": compile_s,
                "sampling_s": fit.attrs["sampling_time_s"] - (compile_s or 0.0),
                "rhat": fit.attrs["rhat_max"],
            }
        )
    return rows


def run(seed: int, pymc: bool, cache_dir: Path) -> list[dict]:
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = str(cache_dir / "numba")
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache_dir / 'pytensor'}"
    command = [sys.executable, __file__, "--child", "--seed", str(seed)] + (["--pymc"] if pymc else [])
    result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _print(rows: list[dict], cache: str) -> None:
    trivial = rows[0]["compile_s"]
    for index, row in enumerate(rows):
        compile_s = row["compile_s"]
        ratio = f"{compile_s / trivial:6.2f}x" if compile_s is not None else "      -"
        compile_text = f"{compile_s:9.2f}" if compile_s is not None else "        -"
        rhat = f"{row['rhat']:7.3f}" if "rhat" in row else "      -"
        print(
            f"{cache:5s} {index:2d} {row['fit']:28s} {row['wall_s']:8.1f} {compile_text} {ratio} "
            f"{row['sampling_s']:10.2f} {rhat}",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pymc", action="store_true", help="also time PyMC's own sampler on two shapes")
    parser.add_argument("--cold-only", action="store_true", help="only the first process, with empty caches")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.child:
        print(json.dumps(child(args.seed, args.pymc)))
        return
    print(f"one process per row group, {os.cpu_count()} cores; compile x = compile / the trivial model's")
    print(
        f"{'cache':5s} {'#':>2s} {'fit':28s} {'wall s':>8s} {'compile s':>9s} {'x':>7s} {'sampling s':>10s} "
        f"{'R-hat':>7s}"
    )
    with tempfile.TemporaryDirectory() as cache_root:
        for cache in ("cold",) if args.cold_only else ("cold", "warm"):
            rows = run(args.seed, args.pymc, Path(cache_root))
            _print(rows, cache)
            if cache == "cold":
                trivial = rows[0]["compile_s"]
                later = max(row["compile_s"] for row in rows[2:] if row["fit"].endswith("nutpie"))
                print(
                    f"      first fit compile / trivial: {rows[1]['compile_s'] / trivial:.2f}x (goal <= 1.5); "
                    f"worst later nutpie fit: {later / trivial:.2f}x (goal <= 0.3)"
                )


if __name__ == "__main__":
    main()
