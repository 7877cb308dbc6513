"""The fused kernels' C entry points: called through an address cell, compiled aside while a graph compiles.

Each scenario runs in a fresh Python process with an empty numba cache, as the first fit after an install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SETUP = """
import json, os, subprocess, sys
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


def test_kernels_compile_in_another_process_while_the_block_runs(tmp_path):
    report = _run(
        tmp_path,
        """
        fe.os.sched_getaffinity = lambda pid: {0, 1}  # two CPUs, whatever this machine has
        started = []
        popen = fe.subprocess.Popen
        fe.subprocess.Popen = lambda *args, **kwargs: started.append(popen(*args, **kwargs)) or started[-1]
        with fe.kernels_compiled_aside():
            logp = fe.entry_point("diagonal", "logp")
            grad = fe.entry_point("diagonal", "grad")
            inside = logp(x, w, m, sd)  # the block's code runs before the kernel is in place
        with fe.kernels_compiled_aside():  # a second fit in the process: the kernels are in place already
            fe.entry_point("diagonal", "logp")
        print(json.dumps({
            "inside": bool(np.all(inside == -np.inf)),  # the cell still held 0: no crash, no stale memory
            # one process at a time: the second kernel is compiled here, after it
            "processes": [[p.pid != os.getpid(), p.returncode] for p in started],
            "loaded": fe._IN_PLACE["diagonal", "logp"].cache_hits,
            "compiled_here": fe._IN_PLACE["diagonal", "grad"].cache_hits,
            "logp": bool(np.allclose(logp(x, w, m, sd), expected_logp, rtol=1e-12)),
            "grad": bool(np.allclose(grad(x, w, m, sd, g)[1], expected_grad_means, rtol=1e-6)),
        }))
        """,
    )
    assert report == {
        "inside": True,
        "processes": [[True, 0]],
        "loaded": 1,  # what the other process compiled, loaded from the cache
        "compiled_here": 0,
        "logp": True,
        "grad": True,
    }


@pytest.mark.slow
def test_a_failed_or_abandoned_process_leaves_the_kernel_to_this_one(tmp_path):
    report = _run(
        tmp_path,
        """
        fe.os.sched_getaffinity = lambda pid: {0, 1}
        slow_failure = [sys.executable, "-c", "import time; time.sleep(3); raise SystemExit(3)"]
        fe._python_command = lambda key: slow_failure
        try:
            with fe.kernels_compiled_aside():
                fe.entry_point("diagonal", "logp")
                abandoned = fe._OTHER_PROCESS
                raise KeyboardInterrupt  # the block is left while the other process runs
        except KeyboardInterrupt:
            pass
        running_after_interrupt = abandoned.poll() is None
        with fe.kernels_compiled_aside():  # the next fit: no second process while the first one runs
            logp = fe.entry_point("diagonal", "logp")
            same_process = fe._OTHER_PROCESS is abandoned
        print(json.dumps({
            "running_after_interrupt": running_after_interrupt,
            "same_process": same_process,
            "exit_status": abandoned.returncode,
            "loaded": fe._IN_PLACE["diagonal", "logp"].cache_hits,
            "logp": bool(np.allclose(logp(x, w, m, sd), expected_logp, rtol=1e-12)),
        }))
        """,
    )
    assert report == {
        "running_after_interrupt": True,
        "same_process": True,
        "exit_status": 3,
        "loaded": 0,  # compiled here, after waiting for the failed process
        "logp": True,
    }


def test_no_other_process_without_a_spare_cpu_or_a_python_to_run(monkeypatch):
    from bayes_gmm.models import _fused_entry

    key = ("diagonal", "logp")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    command = _fused_entry._python_command(key)
    assert command[0] == sys.executable and repr(key) in command[-1]
    for executable in (None, "", "/usr/bin/uwsgi"):  # an embedding host's executable is not Python
        monkeypatch.setattr(sys, "executable", executable)
        assert _fused_entry._python_command(key) is None
    monkeypatch.undo()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert _fused_entry._python_command(key) is None
    monkeypatch.undo()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert _fused_entry._python_command(key) is None


FORK_WHILE_LOCKED = """
import os, threading, time
from bayes_gmm.models import _fused_entry as fe

fe.entry_point("diagonal", "logp")  # in place, loaded or compiled once
held, release = threading.Event(), threading.Event()


def hold_the_lock():
    with fe._PLACING:
        held.set()
        release.wait()


threading.Thread(target=hold_the_lock, daemon=True).start()
held.wait()
fe._OTHER_PROCESS = "the parent's process"
pid = os.fork()
if pid == 0:  # the child: the lock another thread held is free, the parent's process is not its own
    fe.entry_point("diagonal", "grad")
    os._exit(0 if fe._OTHER_PROCESS is None else 1)
release.set()
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_does_not_inherit_a_held_lock_or_the_parents_process():
    result = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_LOCKED],
        capture_output=True,
        text=True,
        timeout=300,  # a child blocked on the inherited lock would never finish
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0"
