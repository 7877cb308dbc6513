"""EM at scale: in memory vs on Dask, and out of core from a zarr store (issue 15).

Parts:

1. EM time per iteration on 1e7 x 2, K=3 (full covariances) in memory (the parallel numba kernel) and on
   Dask over the same array in chunks (the serial kernel per chunk, Dask's threaded scheduler), and
   their ratio, in the same run.
2. EM on 1e8 x 2, K=3 out of core: a zarr store is written chunk by chunk (~1.6 GB uncompressed), then
   fitted in a subprocess whose peak resident memory (``resource.getrusage``'s ``ru_maxrss``) must stay
   under 2 GB; time per iteration from the fit's progress messages. The store is deleted afterwards.
3. Coreset NUTS (the Bayesian half of issue 15): run by ``run_part3(args)`` of ``benchmarks/scale_coreset.py``
   when that file exists.

Time per iteration is the median over the iterations of fits with a fixed number of EM updates from the
same start (``tol=0``), each iteration timed from the start of one E-step pass to the start of the next
(the E-step over all rows and the M-step); what a fit does once (checks, copies, the final pass) is left out.
Data and starts are seeded (``--seed``). Other processes on the machine inflate the numbers: compare the
two of a run, not runs.

    python benchmarks/scale.py                 # parts 1 and 2 at full size (and 3 if present)
    python benchmarks/scale.py --part 1 --quick
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning

#: The mixture the data are drawn from (2-D, K=3, full covariances).
WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0], [4.0, 3.0], [-3.0, 4.0]])
COVARIANCES = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.8, -0.2], [-0.2, 1.2]], [[0.6, 0.0], [0.0, 0.6]]])
#: Peak resident memory allowed for the out-of-core fit (part 2).
MEMORY_LIMIT_BYTES = 2 * 1024**3


def draw(n, rng) -> np.ndarray:
    """`n` rows from the mixture above."""
    labels = rng.choice(len(WEIGHTS), size=n, p=WEIGHTS)
    chol = np.linalg.cholesky(COVARIANCES)
    noise = rng.standard_normal((n, 2))
    return MEANS[labels] + np.einsum("nij,nj->ni", chol[labels], noise)


def start_params(seed) -> dict:
    """A start near, not at, the truth: every fit of a part begins here."""
    rng = np.random.default_rng(seed + 1)
    return {
        "weights": np.full(3, 1 / 3),
        "means": MEANS + rng.normal(0, 0.5, MEANS.shape),
        "covariances": 2 * COVARIANCES,
    }


def iteration_times(X, n_iter, start) -> tuple[np.ndarray, float]:
    """Wall time of each EM iteration (E-step pass + M-step) of a fit with `n_iter` updates (``tol=0``),
    from the start of one E-step to the next; and the fit's whole wall time.

    In memory, the E-step kernel's calls are timestamped; on Dask, the fit's progress messages (one before
    each pass).
    """
    import bayes_gmm.em_baseline._fit as in_memory

    stamps = []
    real = in_memory.fused_estep_statistics

    def stamped(*args, **kwargs):
        stamps.append(time.perf_counter())
        return real(*args, **kwargs)

    def progress(message):
        if message.startswith(("EM iteration", "final pass")):
            stamps.append(time.perf_counter())

    in_memory.fused_estep_statistics = stamped
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            begin = time.perf_counter()
            fit_em(X, 3, initial_params=start, n_init=1, max_iter=n_iter, tol=0.0, progress=progress)
            total = time.perf_counter() - begin
    finally:
        in_memory.fused_estep_statistics = real
    return np.diff(stamps), total


def per_iteration(X, n_iter, start, repeats) -> float:
    """Median time per EM iteration over `repeats` fits of `n_iter` updates (after a warm-up fit)."""
    iteration_times(X, 2, start)  # warm-up: numba compilation or cache load
    return float(np.median(np.concatenate([iteration_times(X, n_iter, start)[0] for _ in range(repeats)])))


# -- part 1 ------------------------------------------------------------------------------------------------


def run_part1(args) -> dict:
    import dask
    import dask.array as da
    import numba

    n = 1_000_000 if args.quick else 10_000_000
    chunk_rows = min(args.chunk_rows, n // 4)
    X = draw(n, np.random.default_rng(args.seed))
    start = start_params(args.seed)
    memory = per_iteration(X, args.iterations, start, args.repeats)
    Xd = da.from_array(X, chunks=(chunk_rows, 2))
    on_dask = per_iteration(Xd, args.iterations, start, args.repeats)
    result = {
        "part": 1,
        "n_samples": n,
        "chunk_rows": chunk_rows,
        "n_chunks": int(Xd.numblocks[0]),
        "numba_threads": numba.get_num_threads(),
        "dask_scheduler": "threads",
        "dask_workers": dask.system.CPU_COUNT,
        "in_memory_s_per_iteration": memory,
        "dask_s_per_iteration": on_dask,
        "dask_over_in_memory": on_dask / memory,
    }
    print(
        f"part 1: {n:.0e} x 2, K=3 full, {args.iterations} EM updates: in memory (numba, "
        f"{result['numba_threads']} threads) {memory:.3f} s/iteration; Dask ({result['n_chunks']} chunks of "
        f"{chunk_rows} rows, threaded scheduler, {result['dask_workers']} workers) {on_dask:.3f} s/iteration; "
        f"ratio Dask / in memory {on_dask / memory:.2f}",
        flush=True,
    )
    return result


# -- part 2 ------------------------------------------------------------------------------------------------


def write_store(path: Path, n: int, chunk_rows: int, seed: int) -> None:
    """A zarr store of `n` rows from the mixture, written one chunk at a time (never whole in memory)."""
    import zarr

    store = zarr.create_array(store=str(path), shape=(n, 2), chunks=(chunk_rows, 2), dtype="f8")
    store.attrs["feature_names"] = ["x", "y"]
    seeds = np.random.SeedSequence(seed).spawn(-(-n // chunk_rows))
    for i, child in enumerate(seeds):
        lo = i * chunk_rows
        store[lo : min(lo + chunk_rows, n)] = draw(min(chunk_rows, n - lo), np.random.default_rng(child))


def fit_store(store: str, max_iter: int, seed: int) -> dict:
    """(In the child process.) Fit the store by Dask EM, the default path: starts on a sample, then all rows."""
    from bayes_gmm.sources import open_dask

    stamps = []

    def progress(message):
        stamps.append((time.perf_counter(), message))

    data = open_dask(store)
    begin = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        em = fit_em(data.array, 3, random_seed=seed, max_iter=max_iter, progress=progress)
    total = time.perf_counter() - begin
    iterations = [t for t, m in stamps if m.startswith("EM iteration")] + [
        t for t, m in stamps if m.startswith("final pass")
    ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    own_peak = None
    try:  # this process's own high-water mark (ru_maxrss also counts the parent's, see run_part2)
        with open("/proc/self/status", encoding="ascii") as status:
            own_peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        pass
    return {
        "n_samples": em.n_samples,
        "chunk_rows": int(data.array.chunks[0][0]),
        "n_iter": em.n_iter,
        "converged": em.converged,
        "log_likelihood": em.log_likelihood,
        "means": em.means.round(4).tolist(),
        "weights": em.weights.round(4).tolist(),
        "total_s": total,
        "first_pass_s": stamps[1][0] - stamps[0][0] if len(stamps) > 1 else None,
        "s_per_iteration": float(np.median(np.diff(iterations))) if len(iterations) > 1 else None,
        "peak_rss_bytes": peak,
        "vm_hwm_bytes": own_peak,
    }


def run_part2(args) -> dict:
    """Part 2. Linux carries a parent's peak resident memory into its child's ``ru_maxrss`` (across fork
    and exec), so this part runs before part 1 (whose 1e7 rows would count), and the child reports its own
    high-water mark (``VmHWM``) too."""
    n = 10_000_000 if args.quick else 100_000_000
    folder = Path(tempfile.mkdtemp(prefix="bayes-gmm-scale-", dir=args.workdir))
    store = folder / "data.zarr"
    try:
        begin = time.perf_counter()
        write_store(store, n, args.chunk_rows, args.seed)
        written = time.perf_counter() - begin
        on_disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        print(
            f"part 2: wrote {n:.0e} x 2 to {store} in {written:.1f} s ({on_disk / 1e9:.2f} GB on disk)",
            flush=True,
        )
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child-fit",
                str(store),
                "--max-iter",
                str(args.max_iter),
                "--seed",
                str(args.seed),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result.update(part=2, write_s=written, store_bytes=on_disk, limit_bytes=MEMORY_LIMIT_BYTES)
    result["within_limit"] = result["peak_rss_bytes"] <= MEMORY_LIMIT_BYTES
    print(
        f"part 2: {n:.0e} x 2 out of core from zarr ({result['chunk_rows']} rows per chunk): "
        f"{result['s_per_iteration']:.2f} s/iteration (median), {result['n_iter']} iterations "
        f"({'converged' if result['converged'] else 'max_iter reached'}), {result['total_s']:.1f} s in all "
        f"(first pass: checks and sample, {result['first_pass_s']:.1f} s); peak memory (ru_maxrss) "
        f"{result['peak_rss_bytes'] / 1024**3:.2f} GiB, the child's own (VmHWM) "
        f"{(result['vm_hwm_bytes'] or 0) / 1024**3:.2f} GiB "
        f"({'within' if result['within_limit'] else 'OVER'} the 2 GiB limit)",
        flush=True,
    )
    return result


# -- part 3 (coreset NUTS) --------------------------------------------------------------------------------


def run_part3(args) -> dict | None:
    """TODO(issue 15, Bayesian half): coreset NUTS on 1e6 and 1e7 points lives in benchmarks/scale_coreset.py,
    whose ``run_part3(args)`` this calls when the file exists (it gets the same parsed arguments)."""
    path = Path(__file__).with_name("scale_coreset.py")
    if not path.exists():
        print("part 3: skipped (benchmarks/scale_coreset.py is not there yet)", flush=True)
        return None
    spec = importlib.util.spec_from_file_location("scale_coreset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_part3(args)


PARTS = {"1": run_part1, "2": run_part2, "3": run_part3}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part", choices=[*PARTS, "all"], default="all", help="which part to run (default all)"
    )
    parser.add_argument("--quick", action="store_true", help="10x smaller data (1e6 / 1e7 rows)")
    parser.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows per Dask / zarr chunk")
    parser.add_argument("--iterations", type=int, default=10, help="part 1: EM updates timed")
    parser.add_argument("--repeats", type=int, default=2, help="part 1: timings, the best is kept")
    parser.add_argument("--max-iter", type=int, default=20, help="part 2: EM updates at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir", default=None, help="part 2: where to write the zarr store (default: temp)"
    )
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--child-fit", default=None, help=argparse.SUPPRESS)  # part 2's measured subprocess
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.child_fit is not None:
        print(json.dumps(fit_store(args.child_fit, args.max_iter, args.seed)))
        return 0
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    # Part 2 first: its measured child would otherwise inherit part 1's peak memory (see run_part2).
    parts = ["2", "1", "3"] if args.part == "all" else [args.part]
    results = [r for r in (PARTS[p](args) for p in parts) if r is not None]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
