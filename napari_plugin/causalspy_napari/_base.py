"""Shared machinery of the causalspy dock widgets (magicgui containers)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from magicgui.widgets import Container, Label, PushButton

from causalspy.exceptions import CausalspyError
from causalspy_napari._convert import layer_step
from causalspy_napari._jobs import Failure, JobContext, Progress, guarded, run_sync

__all__ = ["JobWidget", "notify", "add_or_replace", "ask_save_path"]

log = logging.getLogger("causalspy_napari")


def notify(message: str, severity: str = "error") -> None:
    """A napari notification (never a traceback dialog)."""
    from napari.utils.notifications import show_error, show_info, show_warning

    {"error": show_error, "warning": show_warning}.get(severity, show_info)(message)


def add_or_replace(viewer, layer_data: tuple, below=None):
    """Add a layer from a layer data tuple; a causalspy layer of the same name is replaced.

    ``below``: a layer to insert the new one under (default: on top).
    """
    from napari.layers import Layer

    data, kwargs, kind = layer_data
    new = Layer.create(data, kwargs, kind)
    old = next((ly for ly in viewer.layers if ly.name == new.name and layer_step(ly)), None)
    if old is not None:
        idx = viewer.layers.index(old)
        viewer.layers.remove(old)
        viewer.layers.insert(idx, new)
    elif below is not None and below in viewer.layers:
        viewer.layers.insert(viewer.layers.index(below), new)
    else:
        viewer.add_layer(new)
    return new


def ask_save_path(parent, title: str, default: str, pattern: str) -> str | None:
    """A save-file dialog; None if the user cancelled."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, title, default, pattern)
    return path or None


def _wrap(label: Label) -> None:
    """Let a magicgui Label wrap long text and take the dock's width."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QSizePolicy

    q = label.native
    q.setWordWrap(True)
    q.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    q.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.MinimumExpanding)
    q.setMinimumHeight(3 * q.fontMetrics().height())
    q.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)


class JobWidget(Container):
    """A dock widget whose Run button starts a causalspy job in a thread worker.

    Subclasses implement :meth:`_prepare`, which reads the widgets and the
    layers *in the main thread*, raises :class:`~causalspy.CausalspyError`
    for bad input (shown as a notification, nothing is changed) and returns
    ``(job, apply)``: ``job(ctx)`` is a generator run in a worker thread that
    yields :class:`Progress` and returns a result; ``apply(result)`` runs in
    the main thread, adds the layers and returns a status line.
    """

    job_title = "causalspy"

    def __init__(self, viewer, widgets: list, *, run_text: str = "Run") -> None:
        self._viewer = viewer
        self._worker = None
        self._ctx: JobContext | None = None
        self.last_result = None
        self._run_btn = PushButton(text=run_text)
        self._cancel_btn = PushButton(text="Cancel", enabled=False)
        self._status = Label(value="")
        _wrap(self._status)
        buttons = Container(widgets=[self._run_btn, self._cancel_btn], layout="horizontal",
                            labels=False)
        status = Container(widgets=[self._status], labels=False)
        super().__init__(widgets=[*widgets, buttons, status])
        self._run_btn.changed.connect(self._on_run_clicked)
        self._cancel_btn.changed.connect(self.cancel)
        ev = viewer.layers.events
        for name in ("inserted", "removed", "reordered"):
            getattr(ev, name).connect(self._layers_changed)

    # ------------------------------------------------------------------ layers
    def _layers_changed(self, event=None) -> None:
        try:
            self.reset_choices()
            if getattr(event, "type", None) == "inserted":
                layer = event.value
                for combo, kind, prefer in getattr(self, "_follow", []):
                    step = layer_step(layer)
                    fits = step == prefer if prefer else step is None or step.startswith(
                        "sample")
                    if isinstance(layer, kind) and fits and layer in list(combo.choices):
                        combo.value = layer
        except RuntimeError:  # the Qt widget was deleted
            pass

    def _follow_new_layers(self, combo, kind: type, prefer: str | None = None) -> None:
        """Let ``combo`` switch to new layers of ``kind`` (made by step ``prefer``; with
        ``prefer=None``: new layers not made by causalspy, e.g. opened images)."""
        self._follow = [*getattr(self, "_follow", []), (combo, kind, prefer)]

    def _layer_choices(self, kind: type, prefer: str | None = None) -> Callable:
        """A ``choices`` callable: layers of one type, those made by step ``prefer`` first."""

        def choices(widget=None):
            layers = [ly for ly in self._viewer.layers if isinstance(ly, kind)]
            if prefer:
                layers.sort(key=lambda ly: layer_step(ly) != prefer)
            return [(ly.name, ly) for ly in layers]

        return choices

    def _select_active(self, combo, kind: type, prefer: str | None = None) -> None:
        """Point a layer combo box at the selected layer of the viewer when it fits, and
        let it follow new layers of the same kind."""
        self._follow_new_layers(combo, kind, prefer)
        active = self._viewer.layers.selection.active
        if not isinstance(active, kind) or active not in list(combo.choices):
            return
        if prefer and layer_step(active) != prefer and any(
                layer_step(c) == prefer for c in combo.choices):
            return
        combo.value = active

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self._worker is not None

    def _on_run_clicked(self, *_):
        self.run()

    def _prepare(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, sync: bool = False, prepare: Callable | None = None):
        """Start the job (in a thread worker; ``sync=True``: in this thread, for scripts and tests).

        Returns the worker (asynchronous) or the result (synchronous); None when the
        input was refused or the job failed (a notification says why).
        """
        if self.running:
            notify(f"{self.job_title} is already running: wait for it or cancel it.", "info")
            return None
        try:
            job, apply = (prepare or self._prepare)()
        except CausalspyError as e:
            self._fail(Failure(str(e)))
            return None
        except Exception as e:  # not the user's fault: say so in words, details to the log
            log.exception("preparing %s failed", self.job_title)
            self._fail(Failure(f"{self.job_title} could not start ({type(e).__name__}): {e}"))
            return None
        ctx = JobContext()
        self._status.value = "running…"
        if sync:
            result = run_sync(guarded(job, ctx), self._show_progress)
            self._finish(result, apply)
            return None if isinstance(result, Failure) else result
        from napari.qt.threading import create_worker

        worker = create_worker(guarded, job, ctx, _start_thread=False,
                               _progress={"desc": self.job_title, "total": 0})
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(lambda result: self._finish(result, apply))
        worker.finished.connect(self._on_finished)
        self._worker, self._ctx = worker, ctx
        self._run_btn.enabled = False
        self._cancel_btn.enabled = True
        worker.start()
        return worker

    def cancel(self, *_) -> None:
        """Cancel the running job: it stops at once and nothing is added or changed."""
        if self._ctx is not None:
            self._ctx.cancel()
        if self._worker is not None:
            self._worker.quit()
            self._status.value = "cancelling…"

    def _on_yielded(self, p: Progress) -> None:
        self._show_progress(p)
        pbar = getattr(self._worker, "pbar", None)
        if pbar is None or not isinstance(p, Progress):
            return
        try:
            if p.total > 0:
                if pbar.total != p.total:
                    pbar.total = p.total
                if p.done > pbar.n:
                    pbar.update(p.done - pbar.n)
            if p.message and pbar.desc != f"{self.job_title}: {p.message}":
                pbar.set_description(f"{self.job_title}: {p.message}")
        except Exception:  # a progress bar is never worth an error
            pass

    def _show_progress(self, p: Progress) -> None:
        if not isinstance(p, Progress):
            return
        pct = f" {100 * p.done / p.total:.0f} %" if p.total > 0 else ""
        text = f"{p.message}…{pct}"
        if self._status.value != text:
            self._status.value = text

    def _on_finished(self, *_) -> None:
        cancelled = self._ctx is not None and self._ctx.cancelled
        self._worker, self._ctx = None, None
        try:
            self._run_btn.enabled = True
            self._cancel_btn.enabled = False
            if cancelled:
                self._status.value = "Cancelled: nothing was changed."
        except RuntimeError:  # widget deleted while the job ran
            pass

    def _finish(self, result, apply: Callable) -> None:
        if self._ctx is not None and self._ctx.cancelled:
            return
        if isinstance(result, Failure):
            self._fail(result)
            return
        try:
            status = apply(result)
        except CausalspyError as e:
            self._fail(Failure(str(e)))
            return
        except Exception as e:  # show in words; details to the log
            log.exception("applying the result of %s failed", self.job_title)
            self._fail(Failure(f"{self.job_title} failed ({type(e).__name__}): {e}"))
            return
        self.last_result = result
        self._status.value = status or "done"

    def _fail(self, failure: Failure) -> None:
        if failure.severity == "info" and failure.message == "Cancelled.":
            self._status.value = "Cancelled: nothing was changed."
            return
        self._status.value = failure.message
        notify(failure.message, failure.severity)

    # ------------------------------------------------------------------ saving
    def _save(self, obj, path, title: str, default: str, pattern: str, what: str):
        if path is None:
            path = ask_save_path(self.native, title, default, pattern)
            if path is None:
                return None
        try:
            out = obj.save(path)
        except (OSError, CausalspyError) as e:
            notify(f"Could not save {what} to {path}: {e}")
            return None
        notify(f"Saved {what} to {out}", "info")
        self._status.value = f"Saved {what} to {out}"
        return Path(out)
