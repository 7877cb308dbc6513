"""The fused kernels' C entry points, as PyTensor's numba back end calls them through an address cell.

Each scenario runs in a fresh Python process with an empty numba cache, as the first compile after an install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SETUP = """
import json, os, sys
import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm
from bayes_gmm.models import _fused_entry as fe

rng = np.random.default_rng(0)
x, w, m, sd, g = rng.normal(size=(40, 2)), np.array([0.3, 0.7]), rng.normal(size=(2, 2)), np.ones((2, 2)), np.ones(40)


def scipy_logp(means):
    # log sum_k w_k prod_d N(x_d | m_kd, sd_kd), independently of the kernels
    return logsumexp(norm.logpdf(x[:, None, :], means, sd).sum(axis=2) + np.log(w), axis=1)


expected_logp = scipy_logp(m)
# d/dm of sum_n log p(x_n): central differences
expected_grad_means = np.array([
    [(scipy_logp(m + h).sum() - scipy_logp(m - h).sum()) / 2e-6 for h in 1e-6 * np.eye(4).reshape(4, 2, 2)[2 * k : 2 * k + 2]]
    for k in range(2)
])
"""


def _run(tmp_path, code: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # compiles the entries cold in new processes: 25-45 s
def test_entries_compute_the_mixture_density_and_load_from_the_cache_later(tmp_path):
    # One kernel (both outputs in one pass): each compile of an entry costs seconds.
    code = """
        logp, grad_weights, grad_means, grad_sd = fe.entry_point("diagonal", "logp_and_grad")(x, w, m, sd, g)
        print(json.dumps({
            "hits": fe._IN_PLACE["diagonal", "logp_and_grad"].cache_hits,
            "logp": bool(np.allclose(logp, expected_logp, rtol=1e-12)),
            "grad": bool(np.allclose(grad_means, expected_grad_means, rtol=1e-6)),
        }))
        """
    assert _run(tmp_path, code) == {"hits": 0, "logp": True, "grad": True}  # compiled
    assert _run(tmp_path, code) == {"hits": 1, "logp": True, "grad": True}  # a later process: loaded


FORK_WHILE_LOCKED = """
import os, threading
from bayes_gmm.models import _fused_entry as fe
from bayes_gmm.models import _model_kernel as mk

fe.entry_point("diagonal", "logp_and_grad")  # in place, loaded or compiled once
held, release = threading.Event(), threading.Event()


def hold_the_locks():
    with fe._PLACING, mk._COMPILING:
        held.set()
        release.wait()


threading.Thread(target=hold_the_locks, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:  # the child: the locks another thread held are free
    fe.entry_point("diagonal", "logp_and_grad")
    mk.model_callbacks("diag")
    os._exit(0)
release.set()
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_does_not_inherit_a_held_compile_lock():
    result = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_LOCKED],
        capture_output=True,
        text=True,
        timeout=300,  # a child blocked on an inherited lock would never finish
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0"
