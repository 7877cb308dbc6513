"""Which NUTS and ADVI implementations there are, which one runs by default, and BLAS-thread hygiene."""

from __future__ import annotations

import contextlib
import importlib.util
import os

from threadpoolctl import threadpool_limits

#: Every NUTS back end bayes-gmm can drive; nutpie and PyMC's own sampler are always installed.
NUTS_BACKENDS = ("nutpie", "pymc", "numpyro")
#: Order in which ``backend="auto"`` picks an installed back end, fastest first. nutpie runs one numba kernel
#: of the whole model, compiled once for every model shape (bayes_gmm.models._model_kernel), and samples
#: several times faster than PyMC's Python NUTS loop (benchmarks/nuts_vs_naive.py); numpyro must use the plain
#: PyTensor graph.
AUTO_PREFERENCE = ("nutpie", "pymc", "numpyro")
#: The ADVI implementations: "kernel" (bayes-gmm's, on the compiled model kernel: nothing compiled per model
#: shape; what "auto" runs) and "pymc" (PyMC's ``pm.fit``, which compiles the model's graph per shape).
ADVI_BACKENDS = ("kernel", "pymc")
_MODULES = {"pymc": ("pymc",), "numpyro": ("numpyro", "jax"), "nutpie": ("nutpie",)}
_EXTRA = {"numpyro": "numpyro"}


def available_backends() -> list[str]:
    """The NUTS back ends whose packages are importable here, in :data:`AUTO_PREFERENCE` order."""
    return [b for b in AUTO_PREFERENCE if all(importlib.util.find_spec(m) for m in _MODULES[b])]


def resolve_backend(backend: str) -> str:
    """Return the back end to run: `backend` itself if installed, or the fastest installed for "auto"."""
    if backend == "auto":
        return available_backends()[0]
    if backend not in NUTS_BACKENDS:
        raise ValueError(
            f"backend must be 'auto' or one of {NUTS_BACKENDS}; got {backend!r}. "
            f"Use backend='auto' to run the fastest installed one."
        )
    if backend not in available_backends():
        raise ImportError(
            f"backend={backend!r} needs the package(s) {_MODULES[backend]}, which are not installed. "
            + (
                f"Install them with: pip install 'bayes-gmm[{_EXTRA[backend]}]'"
                if backend in _EXTRA
                else "Reinstall bayes-gmm"
            )
            + ", or use backend='auto'."
        )
    return backend


def resolve_advi_backend(backend: str) -> str:
    """Return the ADVI implementation to run: `backend` itself, or "kernel" for "auto"."""
    if backend == "auto":
        return ADVI_BACKENDS[0]
    if backend not in ADVI_BACKENDS:
        raise ValueError(
            f"backend for ADVI must be 'auto' or one of {ADVI_BACKENDS}; got {backend!r} (a NUTS back end). "
            f"Use backend='auto' (the model kernel's ADVI) or 'pymc' (PyMC's pm.fit)."
        )
    return backend


_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_blas():
    """Limit BLAS/OpenMP to one thread here and in any sampling worker process started meanwhile.

    Several chains each running multi-threaded BLAS on a few cores oversubscribe them, which made
    sampling 5-15x slower on a 2-core machine (measured). Forked workers inherit the threadpool limit;
    spawned ones read the environment variables when they load their BLAS.
    """
    saved = {name: os.environ.get(name) for name in _THREAD_ENV}
    os.environ.update(dict.fromkeys(_THREAD_ENV, "1"))
    try:
        with threadpool_limits(1):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
