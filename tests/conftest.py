"""Shared fixtures: reference data sets from ../shared/data and small synthetic data with known structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_DATA_DIR = (Path(__file__).parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder with the reference data sets and REFERENCE.md (``/work/shared/data``)."""
    if not (SHARED_DATA_DIR.is_dir() and (SHARED_DATA_DIR / "REFERENCE.md").is_file()):
        pytest.fail(
            f"reference data folder {SHARED_DATA_DIR} (with REFERENCE.md, faithful.csv, galaxies.csv, "
            "acidity.csv) is missing; the published-value tests need it. Restore ../shared/data next to "
            "the repository.",
            pytrace=False,
        )
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def load_reference_csv(shared_data_dir):
    """Return a loader: ``load_reference_csv("faithful")`` -> (n_samples, n_features) float array."""

    def load(name: str) -> np.ndarray:
        path = shared_data_dir / f"{name}.csv"
        if not path.is_file():
            pytest.fail(f"reference data set {path} is missing (see REFERENCE.md)", pytrace=False)
        table = pd.read_csv(path)
        return table.to_numpy(dtype=np.float64)

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
