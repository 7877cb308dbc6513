"""Interrupts that samplers cannot hide, for the API fits and the command line alike.

PyMC's sampler, nutpie and PyMC's ADVI catch KeyboardInterrupt and return the draws made so far as if the
run had finished. While :data:`INTERRUPT` catches a signal (:meth:`Interrupt.catching`), its handler records
the signal before raising KeyboardInterrupt as Python would, so a fit can tell an interrupted run from a
finished one (:meth:`Interrupt.check`) and raise instead of returning a partial result. Handlers are only
installed in the main thread (Python delivers signals there only) and the previous ones are put back.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from contextlib import contextmanager


class Interrupt:
    """Ctrl-C (and whatever other signal it is asked to catch) recorded, then raised as KeyboardInterrupt.

    ``with INTERRUPT.catching(signals):`` installs the handler for `signals` (SIGINT by default) and, at the
    outermost level, resets the record; nested uses (a ``select_k`` inside the command line, a ``fit_gmm``
    inside ``select_k``) share it. While `deferred` (the few renames that swap a command's results in), a
    signal is recorded but does not interrupt.

    Attributes
    ----------
    interrupted : bool
        Whether a caught signal arrived since the outermost ``catching`` began.
    signum : int or None
        The first signal that arrived (e.g. ``signal.SIGTERM``), None when none did.
    deferred : bool
    """

    def __init__(self):
        self.interrupted = False
        self.signum: int | None = None
        self.deferred = False
        self._depth = 0
        self._pid = os.getpid()
        self._previous_unraisable = None
        self._timers: list[threading.Timer] = []

    @contextmanager
    def catching(self, signals=(signal.SIGINT,)):
        """Catch `signals` (by number) inside the block; a no-op outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        outermost = self._depth == 0
        if outermost:
            self.interrupted, self.signum, self.deferred = False, None, False
            self._pid = os.getpid()
            self._previous_unraisable, sys.unraisablehook = sys.unraisablehook, self._unraisable
        installed = {}
        try:
            for signum in signals:
                if signal.getsignal(signum) != self._handle:  # an outer level's handler stays
                    installed[signum] = signal.signal(signum, self._handle)
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
        finally:
            for signum, previous in installed.items():
                # None: a handler not installed from Python, which Python cannot put back; the default.
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            if outermost:
                sys.unraisablehook = self._previous_unraisable
                for timer in self._timers:  # a re-interrupt after this would meet no handler of ours
                    timer.cancel()
                self._timers.clear()

    def _handle(self, signum, frame):
        if not self.interrupted:
            self.signum = signum
        self.interrupted = True
        if self.deferred:
            return
        raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        # A KeyboardInterrupt raised inside __del__ or a C callback (numba's cache writer, say) cannot
        # propagate: Python would print "Exception ignored in ..." with a traceback and drop the interrupt.
        # Keep quiet and interrupt again a moment later, in ordinary code (in the process that installed
        # the handler: a sampler's forked worker inherits this hook, and its parent stops it).
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            if os.getpid() == self._pid:
                timer = threading.Timer(0.05, _thread.interrupt_main)
                self._timers.append(timer)
                timer.start()
            return
        if self.interrupted:
            # Once interrupted, what a finalizer raises while the process unwinds (an LLVM object half torn
            # down, say) follows from the interrupt, which is reported itself.
            return
        self._previous_unraisable(unraisable)

    def check(self) -> None:
        """Raise KeyboardInterrupt if a caught signal arrived, even if a library swallowed it."""
        if self.interrupted:
            raise KeyboardInterrupt


#: The one record of interrupts in a process.
INTERRUPT = Interrupt()


@contextmanager
def interruptible():
    """Around a sampler's run in an API fit: Ctrl-C inside it raises KeyboardInterrupt, even where the
    sampler swallowed it. (A ``with`` block, not a decorator: that would add a frame, and the fits' warnings
    name their caller's line by ``stacklevel``.)

    An error that follows an interrupt (a half-filled trace failing a later step, say) is raised as the
    KeyboardInterrupt it follows from.
    """
    with INTERRUPT.catching():
        try:
            yield
        except Exception as exc:
            if INTERRUPT.interrupted:
                raise KeyboardInterrupt from exc
            raise
        INTERRUPT.check()
