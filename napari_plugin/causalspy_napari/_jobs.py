"""Background jobs: causalspy calls in a napari ``thread_worker``, with progress and cancel.

A *job* is a generator function ``job(ctx)`` that yields :class:`Progress`
and returns its result. Long causalspy calls go through
``yield from ctx.call(message, func, ...)``, which runs ``func`` in a helper
thread and yields a heartbeat every 0.1 s, so that

* napari's activity dock shows a progress bar (percentages when ``func``
  reports them: through a ``progress=`` callback if the causalspy function
  accepts one, or through Dask for tiled work; indeterminate otherwise), and
* cancelling (the widget's Cancel button, or the activity dock) takes effect
  at once: the job stops, its result is discarded and no layer changes. Work
  that reports progress is also interrupted; other work finishes in the
  background (one causalspy job runs at a time, so a new job waits for it).

Errors never escape a job: :func:`guarded` turns them into :class:`Failure`
results that the widget shows as notifications.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass

from causalspy.exceptions import CausalspyError

__all__ = ["Progress", "Failure", "Cancelled", "JobContext", "guarded", "run_sync",
           "dask_progress"]

log = logging.getLogger("causalspy_napari")

#: Held while causalspy computes: its compiled kernels run one job at a time.
_COMPUTE_LOCK = threading.Lock()

#: Seconds between heartbeats (how fast a cancel takes effect).
HEARTBEAT = 0.1


@dataclass
class Progress:
    """A progress report: ``done`` of ``total`` units (``total`` 0: unknown) and a message."""

    done: int = 0
    total: int = 0
    message: str = ""


@dataclass
class Failure:
    """A job that did not produce a result: what to tell the user."""

    message: str
    severity: str = "error"  # or "warning", "info"


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


class JobContext:
    """Shared state between a job (worker thread) and its widget (main thread)."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._tid: int | None = None

    # -- main thread
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- compute thread
    def report(self, done: int, total: int, message: str = "") -> None:
        """Progress callback for causalspy functions; raises :class:`Cancelled` when cancelled."""
        if self._cancel.is_set():
            raise Cancelled()
        self._queue.put(Progress(int(done), int(total), message))

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    # -- worker thread
    def call(self, message: str, func: Callable, *args, **kwargs) -> Generator:
        """Run ``func(*args, **kwargs)`` in a helper thread, yielding progress until it ends.

        ``yield from ctx.call(...)`` returns the function's result (or raises its error).
        """
        self.check()
        try:
            if "progress" in inspect.signature(func).parameters and "progress" not in kwargs:
                kwargs["progress"] = self.report
        except (TypeError, ValueError):  # builtins without a signature
            pass
        box: dict = {}

        def target():
            with _COMPUTE_LOCK:
                if self._cancel.is_set():
                    box["error"] = Cancelled()
                    return
                self._tid = threading.get_ident()
                try:  # (warnings are left alone: their filters are global, not per thread)
                    box["value"] = func(*args, **kwargs)
                except BaseException as e:  # noqa: BLE001 - handed to the worker thread
                    box["error"] = e
                    box["traceback"] = traceback.format_exc()

        busy = _COMPUTE_LOCK.locked()
        th = threading.Thread(target=target, name=f"causalspy: {message}", daemon=True)
        th.start()
        last = Progress(0, 0, "waiting for the previous causalspy job to finish" if busy
                        else message)
        yield last
        while th.is_alive():
            th.join(HEARTBEAT)
            while True:
                try:
                    p = self._queue.get_nowait()
                except queue.Empty:
                    break
                last = Progress(p.done, p.total, p.message or message)
            if last.message.startswith("waiting") and self._tid is not None:
                last = Progress(0, 0, message)
            if self._cancel.is_set():
                raise Cancelled()
            yield last
        self._tid = None
        if "error" in box:
            if "traceback" in box and not isinstance(box["error"], (CausalspyError, Cancelled)):
                log.error("causalspy job %r failed:\n%s", message, box["traceback"])
            raise box["error"]
        return box.get("value")


def guarded(job: Callable[[JobContext], Generator], ctx: JobContext) -> Generator:
    """Run a job generator; turn every error into a :class:`Failure` result."""
    try:
        return (yield from job(ctx))
    except Cancelled:
        return Failure("Cancelled.", "info")
    except CausalspyError as e:
        return Failure(str(e), "error")
    except Exception as e:  # unexpected: say so in words, details go to the log
        log.error("causalspy job failed:\n%s", traceback.format_exc())
        return Failure(f"Unexpected error ({type(e).__name__}): {e}", "error")


def run_sync(gen: Generator, on_progress: Callable[[Progress], None] | None = None):
    """Drive a job generator to completion in the calling thread; return its result."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(p)


class dask_progress:  # noqa: N801 - used like a function in a with-statement
    """Report Dask task progress to a :class:`JobContext` (and stop when cancelled).

    Only computations started from the thread that entered the context count,
    so napari's own Dask reads elsewhere are not affected.
    """

    def __init__(self, ctx: JobContext, message: str) -> None:
        self.ctx, self.message = ctx, message
        self._cb = None

    def __enter__(self):
        from dask.callbacks import Callback

        ctx, message, tid = self.ctx, self.message, threading.get_ident()
        state = {"done": 0, "total": 0}

        def start_state(dsk, st):
            if threading.get_ident() == tid:
                state["done"] = 0
                state["total"] = sum(len(st[k]) for k in ("ready", "waiting", "finished")
                                     if k in st) or len(dsk)

        def pretask(key, dsk, st):
            if threading.get_ident() == tid:
                ctx.check()

        def posttask(key, result, dsk, st, worker_id):
            if threading.get_ident() == tid:
                state["done"] += 1
                ctx.report(state["done"], state["total"], message)

        self._cb = Callback(start_state=start_state, pretask=pretask, posttask=posttask)
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        self._cb.__exit__(*exc)
        return False
