"""Execute the teaching notebooks and the example scripts end to end, with small draws (BAYES_GMM_QUICK=1).

Each notebook asserts its own results (EM from scratch equals fit_em, GMM beats KMeans, ...), so a run
that finishes without an error is a passing test. These runs sample with NUTS and take minutes, hence
the ``slow`` marker: ``python -m pytest -m slow tests/test_notebooks.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jupytext
import nbclient
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
EXAMPLES = {
    "faithful.py": ["clusters.png", "uncertainty.png", "density.png"],
    "galaxies.py": ["density.png", "em_density.png"],
    "iris.py": ["pairs.png", "clusters.png", "uncertainty.png"],
}


def _quick_env() -> dict[str, str]:
    return {**os.environ, "BAYES_GMM_QUICK": "1", "MPLBACKEND": "Agg"}


def test_notebooks_found():
    assert [p.name for p in NOTEBOOKS] == [
        "01_beyond_kmeans.py",
        "02_em_from_scratch.py",
        "03_bayesian_gmm.py",
        "04_choosing_k_and_uses.py",
    ]


@pytest.mark.slow  # even the EM-only notebooks take 15 s each, most of it the kernel starting and importing
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    # The kernel inherits os.environ when it starts: set the quick switch before creating the client.
    monkeypatch.setenv("BAYES_GMM_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell (or assert) fails
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXAMPLES), ids=lambda s: s.removesuffix(".py"))
def test_example_script_runs(script, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--quick", "--out", str(out), "--seed", "1"],
        cwd=tmp_path,
        env=_quick_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for name in EXAMPLES[script]:
        figure = out / name
        assert figure.is_file() and figure.stat().st_size > 1000, f"{script} did not write {name}"
    assert "log-likelihood" in result.stdout


@pytest.mark.slow
def test_sparse_galaxies_script_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sparse_galaxies.py"), "--quick", "--max-components", "5"],
        cwd=tmp_path,
        env=_quick_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines()]
    probabilities = [float(r[1]) for r in rows if len(r) == 2 and r[0].isdigit()]  # "k  probability" rows
    assert len(probabilities) == 5 and abs(sum(probabilities) - 1.0) < 1e-2
