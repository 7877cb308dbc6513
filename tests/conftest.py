"""Shared fixtures: reference data sets from tests/data and small synthetic data with known structure."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

#: Reference data sets and their published values (tests/data/REFERENCE.md cites the sources).
REFERENCE_DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own Ctrl-C handler during every test, as in a terminal.

    A test run started in the background (``pytest &`` in a script, some CI runners) inherits SIGINT
    ignored, and Python then installs no handler; a fit leaves an ignored SIGINT alone (as it should), so
    the tests of Ctrl-C inside a fit would test nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def reference_data_dir() -> Path:
    """The folder with the reference data sets and REFERENCE.md (``tests/data``)."""
    return REFERENCE_DATA_DIR


@pytest.fixture(scope="session")
def load_reference_csv():
    """Return a loader: ``load_reference_csv("faithful")`` -> (n_samples, n_features) float array."""

    def load(name: str) -> np.ndarray:
        return pd.read_csv(REFERENCE_DATA_DIR / f"{name}.csv").to_numpy(dtype=np.float64)

    return load


def make_anisotropic_blobs(n_samples: int = 500, seed: int = 0) -> np.ndarray:
    """Three overlapping, anisotropic, unequally sized 3-D Gaussian blobs (structure, but not trivial)."""
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n_samples, [0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0, 0.0], [3.0, 1.0, -1.0], [-1.0, 3.5, 2.0]])
    parts = []
    for size, mean, k in zip(sizes, means, range(3), strict=True):
        a = rng.normal(size=(3, 3)) * (0.6 + 0.3 * k)
        parts.append(mean + rng.standard_normal((size, 3)) @ a)
    X = np.concatenate(parts)
    return X[rng.permutation(n_samples)]


@pytest.fixture(scope="session")
def blobs() -> np.ndarray:
    """500 x 3 data from three anisotropic blobs."""
    X = make_anisotropic_blobs()
    X.setflags(write=False)
    return X


@pytest.fixture
def count_compiles(monkeypatch):
    """A context manager recording every numba compile (dispatchers, C callbacks), PyTensor function made and
    process started (the model kernel compiles in another process).

    ``with count_compiles() as records: ...`` leaves one text per compile in the list `records`; loading
    compiled code from a cache is no compile.
    """
    from numba.core import event
    from numba.core.ccallback import CFunc
    from pytensor.compile import FunctionMaker

    @contextlib.contextmanager
    def counting():
        records = []

        class Listener(event.Listener):
            def on_start(self, ev):
                records.append(f"numba {ev.data.get('dispatcher')}")

            def on_end(self, ev):
                pass

        real_uncached, real_maker = CFunc._compile_uncached, FunctionMaker.__init__

        def uncached(self):
            records.append(f"numba cfunc {self._pyfunc.__name__}")
            return real_uncached(self)

        def maker(self, *args, **kwargs):
            records.append("pytensor function")
            return real_maker(self, *args, **kwargs)

        real_popen = subprocess.Popen

        def popen(*args, **kwargs):
            records.append(f"process {args[0] if args else kwargs.get('args')}")
            return real_popen(*args, **kwargs)

        with monkeypatch.context() as patch, event.install_listener("numba:compile", Listener()):
            patch.setattr(CFunc, "_compile_uncached", uncached)
            patch.setattr(FunctionMaker, "__init__", maker)
            patch.setattr(subprocess, "Popen", popen)
            yield records

    return counting


def fake_fit(
    weights, means, covariances, X, draws: int = 3, feature_names=None, jitter: float = 0.0
) -> xr.DataTree:
    """A DataTree shaped like fit_gmm's, every draw equal to the given parameters (no sampling).

    Features are named `feature_names` (default ``x0, x1, ...``, as for a fit of an array); `X` is stored as
    the observed data. With `jitter` > 0, each draw's means are moved by independent N(0, jitter^2) noise
    (fixed, seeded), so that the draws differ as a posterior's do.
    """
    k, d = np.shape(means)
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    tile = lambda a: np.broadcast_to(np.asarray(a, dtype=float), (2, draws, *np.shape(a)))  # noqa: E731
    noise = jitter * np.random.default_rng(0).standard_normal((2, draws, k, d))
    posterior = xr.Dataset(
        {
            "weights": (("chain", "draw", "component"), tile(weights)),
            "means": (("chain", "draw", "component", "feature"), tile(means) + noise),
            "covariances": (("chain", "draw", "component", "feature", "feature_cov"), tile(covariances)),
        },
        coords={"component": np.arange(k), "feature": names, "feature_cov": names},
    )
    observed = xr.Dataset(
        {"obs": (("obs_id", "feature"), np.asarray(X, dtype=float))}, coords={"obs_id": np.arange(len(X))}
    )
    return xr.DataTree.from_dict({"posterior": posterior, "observed_data": observed})
