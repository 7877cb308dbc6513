"""Ctrl-C inside the API fits: KeyboardInterrupt, never a fit of what was done so far.

PyMC's sampler, nutpie and PyMC's ADVI catch KeyboardInterrupt and return a partial result; each test
sends a real SIGINT to this process while that library is running (from inside its loop, or from a timer
thread once sampling has started) and asserts that the fit raises instead.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from bayes_gmm._interrupt import INTERRUPT, Interrupt, interruptible
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import _advi, fit_gmm, select_k


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
    """nutpie samples in Rust threads; a SIGINT 0.5 s after sampling starts (10^6 draws: minutes)."""
    import nutpie

    real_sample = nutpie.sample
    timers = []

    def sample(*args, **kwargs):
        timer = threading.Timer(0.5, press_ctrl_c)
        timers.append(timer)
        timer.start()
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", sample)
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        fit_gmm(two_blobs, 2, backend="nutpie", draws=1_000_000, tune=50, chains=2, random_seed=0)
    assert time.perf_counter() - started < 30


def test_catching_nests_and_puts_every_handler_back():
    outer_before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    interrupt = Interrupt()
    with interrupt.catching((signal.SIGINT, signal.SIGTERM)):
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
