"""Ctrl-C inside the API fits: KeyboardInterrupt, never a fit of what was done so far.

PyMC's sampler, nutpie and PyMC's ADVI catch KeyboardInterrupt and return a partial result; each test
sends a real SIGINT to this process while that library is running (from inside its loop, or from a timer
thread once sampling has started) and asserts that the fit raises instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from bayes_gmm._interrupt import INTERRUPT, Interrupt, interruptible
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import _advi, _fit, fit_gmm, select_k


@pytest.fixture(scope="module")
def two_blobs():
    rng = np.random.default_rng(3)
    return np.concatenate([rng.normal([0.0, 0.0], 1.0, (60, 2)), rng.normal([6.0, 3.0], 0.7, (60, 2))])


def press_ctrl_c():
    """SIGINT to this process, as a terminal sends it; Python runs the handler in the main thread."""
    signal.raise_signal(signal.SIGINT)


@pytest.fixture
def ctrl_c_in_advi(monkeypatch):
    """Ctrl-C at ADVI iteration 100 (for PyMC's ADVI inside pm.fit's loop, which swallows it); counts the
    runs started (each has its stopping rule)."""
    runs = []
    real_call, real_init = _advi.ElboPlateau.__call__, _advi.ElboPlateau.__init__

    def call(self, approx, loss_history, i):
        if i == 100:
            press_ctrl_c()
        return real_call(self, approx, loss_history, i)

    def counted_init(self, *args, **kwargs):
        runs.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(_advi.ElboPlateau, "__call__", call)
    monkeypatch.setattr(_advi.ElboPlateau, "__init__", counted_init)
    return runs


ADVI_QUICK = {"method": "advi", "draws": 20, "advi_max_iter": 600, "random_seed": 0}


@pytest.mark.parametrize(
    "backend",
    ["kernel", pytest.param("pymc", marks=pytest.mark.slow)],  # PyMC compiles its ADVI graph
)
def test_ctrl_c_in_advi_raises_and_runs_no_further_restart(two_blobs, ctrl_c_in_advi, backend):
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        fit_gmm(two_blobs, 2, advi_restarts=2, backend=backend, **ADVI_QUICK)
    assert len(ctrl_c_in_advi) == 1  # the second restart never started
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_a_fit_without_ctrl_c_returns_and_warns_at_the_callers_line(two_blobs):
    """The interrupt handling adds no frame between the caller and the fit's warnings (their stacklevel)."""
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.warns(ConvergenceWarning, match="advi_max_iter=600") as caught:
        fit = fit_gmm(two_blobs, 2, advi_restarts=1, **ADVI_QUICK)
    assert fit.posterior.sizes["draw"] == 20
    assert {Path(w.filename) for w in caught if w.category is ConvergenceWarning} == {Path(__file__)}
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_ctrl_c_in_select_k_stops_before_the_next_k(two_blobs, ctrl_c_in_advi):
    messages = []
    with pytest.raises(KeyboardInterrupt):
        select_k(two_blobs, [2, 3], progress=messages.append, advi_restarts=1, **ADVI_QUICK)
    assert messages == ["fitting k=2 (full), 1 of 2 ..."]
    assert len(ctrl_c_in_advi) == 1


def test_ctrl_c_in_pymc_sampling_raises_instead_of_returning_fewer_chains(two_blobs, monkeypatch):
    """PyMC calls `callback` after every draw, in this process when chains run one after the other."""
    real_sample = pm.sample

    def sample(*args, **kwargs):
        def callback(trace, draw):
            if draw.chain == 0 and draw.draw_idx == 20:
                press_ctrl_c()

        return real_sample(*args, callback=callback, **kwargs)

    monkeypatch.setattr(pm, "sample", sample)
    with pytest.raises(KeyboardInterrupt):
        fit_gmm(two_blobs, 2, backend="pymc", draws=60, tune=60, chains=2, cores=1, random_seed=0)


def test_ctrl_c_in_nutpie_sampling_stops_its_threads_and_raises(two_blobs, monkeypatch):
    """nutpie samples in Rust threads; a SIGINT 0.5 s after sampling starts (10^6 draws: minutes). The
    interrupt stops the wait for the sampler, which is cancelled: nutpie never gets to return (blocking,
    it would return the half-filled trace, and the fit would go on with it)."""
    import nutpie

    real_sample = nutpie.sample
    cancelled = []

    class Recorded:
        def __init__(self, sampler):
            self.sampler = sampler

        def wait(self):
            return self.sampler.wait()

        def cancel(self):
            cancelled.append(True)
            self.sampler.cancel()

    def sample(*args, **kwargs):
        threading.Timer(0.5, press_ctrl_c).start()
        return Recorded(real_sample(*args, **kwargs))

    monkeypatch.setattr(nutpie, "sample", sample)
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt) as caught:
        fit_gmm(two_blobs, 2, backend="nutpie", draws=1_000_000, tune=50, chains=2, random_seed=0)
    assert time.perf_counter() - started < 30
    assert cancelled == [True] and caught.value.__cause__ is None
    # The sampling threads stopped (left running, two chains would use most of two cores for minutes).
    cpu_before = time.process_time()
    time.sleep(1.0)
    assert time.process_time() - cpu_before < 0.2


def test_catching_nests_and_puts_every_handler_back():
    outer_before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    interrupt = Interrupt()
    with interrupt.catching((signal.SIGINT, signal.SIGTERM), take_over=True):  # as the command line
        handler = signal.getsignal(signal.SIGINT)
        with interrupt.catching():  # as fit_gmm inside the command line
            assert signal.getsignal(signal.SIGINT) == handler
        assert signal.getsignal(signal.SIGINT) == handler  # the inner level did not take the outer's away
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
        assert interrupt.interrupted and interrupt.signum == signal.SIGTERM
        with interrupt.catching():  # a nested level keeps the record ...
            with pytest.raises(KeyboardInterrupt):
                interrupt.check()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == outer_before
    with interrupt.catching():  # ... a new outermost one starts afresh
        assert not interrupt.interrupted and interrupt.signum is None


def test_an_error_after_a_swallowed_ctrl_c_is_raised_as_the_interrupt():
    """e.g. nutpie's half-filled trace (NaN draws) failing the relabelling."""
    with pytest.raises(KeyboardInterrupt) as caught:
        with interruptible():
            try:
                press_ctrl_c()
            except KeyboardInterrupt:
                pass  # a library's
            raise ValueError("means contains NaN")
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(ValueError, match="no interrupt"), interruptible():
        raise ValueError("no interrupt")


def test_fits_outside_the_main_thread_install_no_handler():
    """signal.signal works in the main thread only; there the fit is left alone."""
    errors, handler = [], signal.getsignal(signal.SIGINT)

    def run():
        try:
            with interruptible():
                assert signal.getsignal(signal.SIGINT) is handler
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == []
    assert not INTERRUPT.interrupted


# -- whose handler, which thread, and the record afterwards ------------------------------------------------


def in_a_thread(function):
    """`function()` run in a worker thread: (its result, None) or (None, what it raised)."""
    outcome = []

    def run():
        try:
            outcome.append((function(), None))
        except BaseException as exc:
            outcome.append((None, exc))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return outcome[0]


def test_a_caught_ctrl_c_leaves_nothing_for_a_later_fit_in_another_thread(two_blobs, monkeypatch):
    """After one Ctrl-C caught in the main thread, a fit in a worker thread (a GUI, a web server) returns
    its result, and its own errors stay its own."""
    with pytest.raises(KeyboardInterrupt), interruptible():
        press_ctrl_c()
    assert not INTERRUPT.interrupted and INTERRUPT.signum is None  # the record ends with the fit
    fit, error = in_a_thread(lambda: fit_gmm(two_blobs, 2, advi_restarts=1, **ADVI_QUICK))
    assert error is None and fit.posterior.sizes["draw"] == 20
    boom = RuntimeError("sampler failed")

    def failing(*args, **kwargs):
        raise boom

    monkeypatch.setattr(_fit, "run_nuts", failing)
    assert in_a_thread(lambda: fit_gmm(two_blobs, 2, draws=20, tune=20)) == (None, boom)


def test_a_fit_in_another_thread_is_not_stopped_by_the_main_threads_interrupt(two_blobs, monkeypatch):
    """The command line (or a caller) in the main thread was interrupted; a worker thread's fit is not."""
    boom = RuntimeError("sampler failed")

    def failing(*args, **kwargs):
        raise boom

    with INTERRUPT.catching():
        INTERRUPT.interrupted = True
        fit, error = in_a_thread(lambda: fit_gmm(two_blobs, 2, advi_restarts=2, **ADVI_QUICK))
        assert error is None and fit.posterior.sizes["draw"] == 20
        monkeypatch.setattr(_fit, "run_nuts", failing)
        assert in_a_thread(lambda: fit_gmm(two_blobs, 2, draws=20, tune=20)) == (None, boom)
    assert not INTERRUPT.interrupted


@pytest.fixture
def sigint_handler():
    """Set SIGINT's handler for one test; Python's own is put back after it."""
    yield lambda handler: signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def test_a_process_that_ignores_sigint_is_not_interrupted(two_blobs, ctrl_c_in_advi, sigint_handler):
    """A multiprocessing or Dask worker, or a job started with `&`, ignores SIGINT: so does the fit."""
    sigint_handler(signal.SIG_IGN)
    fit = fit_gmm(two_blobs, 2, advi_restarts=2, **ADVI_QUICK)  # Ctrl-C at iteration 100 of each run
    assert len(ctrl_c_in_advi) == 2 and fit.posterior.sizes["draw"] == 20
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_callers_own_sigint_handler_is_called_not_replaced(two_blobs, ctrl_c_in_advi, sigint_handler):
    """e.g. "Ctrl-C: finish this fit, then stop the loop"."""
    calls = []

    def handler(signum, frame):
        calls.append(signum)

    sigint_handler(handler)
    fit = fit_gmm(two_blobs, 2, advi_restarts=2, **ADVI_QUICK)
    assert calls == [signal.SIGINT, signal.SIGINT] and len(ctrl_c_in_advi) == 2
    assert fit.posterior.sizes["draw"] == 20
    assert signal.getsignal(signal.SIGINT) is handler


def test_a_handler_set_from_c_is_left_in_place(monkeypatch):
    """An embedding host (R's reticulate, a GUI) may own SIGINT at the C level; Python shows it as None and
    cannot put it back once replaced (the old code set SIG_DFL: Ctrl-C then killed the host)."""
    real_getsignal, calls = signal.getsignal, []
    monkeypatch.setattr(
        signal, "getsignal", lambda signum: None if signum == signal.SIGINT else real_getsignal(signum)
    )
    monkeypatch.setattr(signal, "signal", lambda *args: calls.append(args))
    with interruptible():
        assert not INTERRUPT.active
    assert calls == []


def test_a_second_ctrl_c_while_handlers_are_put_back_leaves_nothing_of_ours(monkeypatch):
    """The impatient user's second Ctrl-C lands just as SIGINT's own handler is back (simulated at that
    instant): the hook for unraisable errors is still restored, and the interrupt raised."""
    real_signal, unraisable_before = signal.signal, sys.unraisablehook

    def signal_then_ctrl_c(signum, handler):
        previous = real_signal(signum, handler)
        if handler is signal.default_int_handler:
            press_ctrl_c()
        return previous

    monkeypatch.setattr(signal, "signal", signal_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        with interruptible():
            with contextlib.suppress(KeyboardInterrupt):  # the first Ctrl-C, swallowed by a sampler
                press_ctrl_c()
    monkeypatch.undo()
    assert sys.unraisablehook is unraisable_before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not INTERRUPT.interrupted and INTERRUPT._timers == []


# -- nutpie failures -------------------------------------------------------------------------------------------


class PanicException(BaseException):
    """pyo3's exception for a Rust panic derives from BaseException."""


class FailedSampler:
    """nutpie's sampler after a worker thread panicked: wait() raises the panic, cancel() panics again."""

    cancelled = False

    def wait(self):
        raise PanicException("assertion failed: early_end < num_tune")

    def cancel(self):
        FailedSampler.cancelled = True
        raise PanicException("Poisoned sampler state mutex: PoisonError { .. }")


def test_a_nutpie_failure_is_reported_as_itself_and_as_an_error(two_blobs, monkeypatch):
    import nutpie

    monkeypatch.setattr(nutpie, "sample", lambda *args, **kwargs: FailedSampler())
    with pytest.raises(RuntimeError, match="nutpie's sampler failed: assertion failed: early_end") as caught:
        fit_gmm(two_blobs, 2, backend="nutpie", draws=20, tune=20, chains=2, random_seed=0)
    assert isinstance(caught.value.__cause__, PanicException)
    assert not FailedSampler.cancelled  # its panic would have hidden the real one


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform: spawned workers start afresh")
def test_a_forked_worker_gets_the_signals_default_dispositions_back():
    # A sampler's forked worker busy in a long C call cannot run a Python handler: with SIGTERM's default
    # disposition its parent's terminate() ends it at once, instead of after the call (a cold compile).
    with INTERRUPT.catching((signal.SIGINT, signal.SIGTERM), take_over=True):
        assert signal.getsignal(signal.SIGTERM) == INTERRUPT._handle
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 if both dispositions are back
            ok = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            ok = ok and signal.getsignal(signal.SIGINT) is signal.default_int_handler
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert signal.getsignal(signal.SIGTERM) == INTERRUPT._handle  # the parent's own stays
    assert os.waitstatus_to_exitcode(status) == 0
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
