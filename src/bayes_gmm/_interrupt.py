"""Interrupts that samplers cannot hide, for the API fits and the command line alike.

PyMC's sampler, nutpie and PyMC's ADVI catch KeyboardInterrupt and return the draws made so far as if the
run had finished. While :data:`INTERRUPT` catches a signal (:meth:`Interrupt.catching`), its handler records
the signal before raising KeyboardInterrupt as Python would, so a fit can tell an interrupted run from a
finished one (:meth:`Interrupt.check`) and raise instead of returning a partial result. Handlers are only
installed in the main thread (Python delivers signals there only) and the previous ones are put back.

An API fit takes SIGINT over only from Python's own ``default_int_handler``: a process that ignores it
(``SIG_IGN``: a ``multiprocessing`` or Dask worker, a job started with ``&``), handles it itself, or whose
host set a handler from C (``getsignal`` gives None) keeps its choice. The command line takes SIGINT and
SIGTERM over in any case.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from contextlib import ExitStack, contextmanager, suppress


class Interrupt:
    """Ctrl-C (and whatever other signal it is asked to catch) recorded, then raised as KeyboardInterrupt.

    ``with INTERRUPT.catching(signals):`` installs the handler for `signals` (SIGINT by default) and resets
    the record when the outermost level begins and ends; nested uses (a ``select_k`` inside the command
    line, a ``fit_gmm`` inside ``select_k``) share it. While `deferred` (the few renames that swap a
    command's results in), a signal is recorded but does not interrupt.

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
        self._levels: list[bool] = []  # per level of catching (main thread): whether our handler is on
        self._pid = os.getpid()
        self._previous_unraisable = None
        self._timers: list[threading.Timer] = []
        self._originals: dict[int, object] = {}  # signal -> the handler ours replaced, while ours is on

    @property
    def active(self) -> bool:
        """Whether this thread is inside a ``catching`` whose handler is ours (not left to the caller's)."""
        return (
            threading.current_thread() is threading.main_thread() and bool(self._levels) and self._levels[-1]
        )

    @contextmanager
    def catching(self, signals=(signal.SIGINT,), take_over=False):
        """Catch `signals` (by number) inside the block; a no-op outside the main thread.

        A signal's handler is replaced only if it is Python's ``default_int_handler``, or whatever it is
        with `take_over` (the command line's choice).
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        outermost = not self._levels
        if outermost:
            self.interrupted, self.signum, self.deferred = False, None, False
            self._pid = os.getpid()
        installed = {}
        try:
            for signum in signals:
                current = signal.getsignal(signum)
                if current == self._handle:  # an outer level's handler stays (bound methods: ==)
                    continue
                if take_over or current is signal.default_int_handler:
                    installed[signum] = self._originals[signum] = signal.signal(signum, self._handle)
            active = any(signal.getsignal(signum) == self._handle for signum in signals)
            if outermost and active:
                self._previous_unraisable, sys.unraisablehook = sys.unraisablehook, self._unraisable
            self._levels.append(active)
            try:
                yield self
            finally:
                self._levels.pop()
        finally:
            self._restore(installed, outermost)

    def _restore(self, installed: dict, outermost: bool) -> None:
        # A second Ctrl-C may arrive at any point in here: it is recorded, not raised, until every step is
        # done (and each step runs even if one before it raised), then raised.
        deferred, self.deferred = self.deferred, True
        before = self.interrupted
        try:
            with ExitStack() as steps:  # the callbacks run last to first
                for signum, previous in installed.items():
                    # None: a handler set from C, which Python cannot put back (only the command line
                    # takes such a handler over): the default.
                    steps.callback(signal.signal, signum, signal.SIG_DFL if previous is None else previous)
                    steps.callback(self._originals.pop, signum, None)
                if outermost and sys.unraisablehook == self._unraisable:
                    steps.callback(setattr, sys, "unraisablehook", self._previous_unraisable)
                if outermost:  # first: a re-interrupt after this would meet no handler of ours
                    steps.callback(self._cancel_timers)
        finally:
            arrived = self.interrupted and not before
            self.deferred = deferred
            if outermost:
                self._reset_record()
        if arrived:
            raise KeyboardInterrupt

    def _reset_record(self) -> None:
        self.interrupted, self.signum, self.deferred = False, None, False

    def _cancel_timers(self) -> None:
        for timer in self._timers:
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
        """Raise KeyboardInterrupt if a caught signal arrived, even if a library swallowed it (only where
        the handler is :attr:`active`: a fit in another thread, or one that left SIGINT to its caller, is
        never stopped by it)."""
        if self.interrupted and self.active:
            raise KeyboardInterrupt


#: The one record of interrupts in a process.
INTERRUPT = Interrupt()


@contextmanager
def interruptible():
    """Around a sampler's run in an API fit: Ctrl-C inside it raises KeyboardInterrupt, even where the
    sampler swallowed it. (A ``with`` block, not a decorator: that would add a frame, and the fits' warnings
    name their caller's line by ``stacklevel``.)

    An error that follows an interrupt (a half-filled trace failing a later step, say) is raised as the
    KeyboardInterrupt it follows from. Outside the main thread, or where SIGINT is left to the caller's
    handler (see :meth:`Interrupt.catching`), nothing is changed.
    """
    with INTERRUPT.catching() as interrupt:
        if not interrupt.active:
            yield
            return
        try:
            yield
        except Exception as exc:
            if interrupt.interrupted:
                raise KeyboardInterrupt from exc
            raise
        interrupt.check()


def _after_fork_in_child() -> None:
    # A forked child (a sampler's worker process) gets the signals' own dispositions back: a Python handler
    # runs only between bytecodes, so a child busy in a long C call (a compile on cold caches) would outlive
    # the command that stopped it, while with the default disposition its parent's SIGTERM ends it at once.
    for signum, previous in INTERRUPT._originals.items():
        with suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
    INTERRUPT._originals.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def exit_by_signal(status: int) -> int:
    """The ``bayes-gmm`` command's end: exit status 128 + N, for a run stopped by SIGINT or SIGTERM (N),
    becomes death by that signal; any other status is returned.

    A shell (``for f in *.csv; do bayes-gmm fit "$f"; done``) stops a loop only when its command was killed
    by SIGINT, not when it exited 130; so, once the command has cleaned up and said so, it takes the
    signal's default action. (Windows has no such exit; there the status is returned.)
    """
    signum = status - 128
    if signum in (signal.SIGINT, signal.SIGTERM) and os.name == "posix":
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError, AttributeError):
                stream.flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return status
