"""Where inference runs: in a thread of Blender's own process, or in a worker process.

This is the one place that knows about threads, processes, progress and cancel. The
operators build a :class:`~ldr2hdr.inference.worker.Request`, start a :class:`Job`
(or call :func:`run_sync` in background mode) and poll it from a modal timer.

Backend choice (:func:`choose_backend`):

* Preferences > Worker Python set: a separate process started with that Python runs
  ``python -m ldr2hdr.inference.worker JOB_DIR``. It owns torch (and a GPU if it has
  one) and is killed to cancel.
* otherwise, when torch imports inside Blender: a daemon thread calls the worker in-process.
* otherwise: :class:`~ldr2hdr.inference.worker.DependencyError` with the fix.

No bpy import: the glue is plain Python so tests can drive it directly.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..inference import worker
from ..inference.errors import Ldr2HdrError

logger = logging.getLogger(__name__)

#: The folder holding this package (``ldr2hdr``); its parent goes on the worker's
#: PYTHONPATH so the worker runs the very code the extension ships.
PACKAGE_DIR = Path(__file__).resolve().parents[1]

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"

#: Windows would flash a console window for every worker process without this.
_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)


def torch_importable() -> bool:
    """Whether this (Blender's) Python can import torch, without importing it yet."""
    return importlib.util.find_spec("torch") is not None


def choose_backend(python_path: str = "") -> tuple[str, str | None]:
    """Return ``("process", python)`` or ``("thread", None)``; raise DependencyError if neither works."""
    python_path = (python_path or "").strip()
    if python_path:
        python = os.path.abspath(os.path.expanduser(python_path))
        if not (os.path.isfile(python) and os.access(python, os.X_OK)):
            raise worker.DependencyError(f"the worker Python does not exist or is not executable: "
                                         f"{worker.FIX_HINT}", python)
        return "process", python
    if torch_importable():
        return "thread", None
    raise worker.DependencyError(f"torch is not installed for Blender's Python ({sys.executable}): {worker.FIX_HINT}")


def worker_environment() -> dict:
    """Environment for a worker process: our package importable, unbuffered output."""
    env = dict(os.environ)
    # An installed extension lives in a folder named after its id ("ldr2hdr"), so its
    # parent folder makes "import ldr2hdr" find exactly this copy. A development
    # checkout under another name relies on the worker Python's own (editable) install.
    if PACKAGE_DIR.name == "ldr2hdr":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR.parent), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    # Blender sets PYTHONHOME/PYTHONPATH for its own interpreter in some builds; a foreign
    # Python must not inherit the home.
    env.pop("PYTHONHOME", None)
    return env


class _Cancelled(Exception):
    """Raised inside a worker thread (from its progress callback) once the job is cancelled."""


class Job:
    """One inference run off the main thread.

    ``start()`` returns at once; ``poll()`` (called from a modal timer) updates
    :attr:`state`, :attr:`progress` and :attr:`message`; when the state is ``DONE``,
    :attr:`response` holds the :class:`~ldr2hdr.inference.worker.Response`, when
    ``FAILED``, :attr:`error` holds the exception. ``cancel()`` stops the worker (kills the
    process; a thread stops at its next progress report, i.e. after the current network
    tile, and its result is discarded) and removes the job folder.
    """

    def __init__(self, request: worker.Request, backend: str = "thread", python: str | None = None):
        if backend not in ("thread", "process"):
            raise ValueError(f"backend must be 'thread' or 'process', got {backend!r}")
        if backend == "process" and not python:
            raise ValueError("a process backend needs the worker Python")
        self.request = request
        self.backend = backend
        self.python = python
        self.state = RUNNING
        self.progress = 0.0
        self.message = "starting"
        self.response: worker.Response | None = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._job_dir: str | None = None
        self._stderr_tail: list[str] = []

    # ------------------------------------------------------------------ life cycle
    def start(self) -> "Job":
        if self.backend == "thread":
            self._thread = threading.Thread(target=self._run_thread, name="ldr2hdr-worker", daemon=True)
            self._thread.start()
        else:
            self._start_process()
        return self

    def poll(self) -> str:
        """Update and return :attr:`state` (never blocks)."""
        if self.state != RUNNING:
            return self.state
        if self.backend == "thread":
            with self._lock:
                finished = self._thread is not None and not self._thread.is_alive()
            if finished and self.state == RUNNING:
                # _run_thread sets the final state itself; reaching here means it died silently.
                self._fail(Ldr2HdrError("the worker thread stopped without a result"))
            return self.state
        code = self._process.poll()
        if code is None:
            return self.state
        if self._reader is not None:
            self._reader.join(timeout=1.0)
        self._finish_process(code)
        return self.state

    def wait(self, timeout: float | None = None) -> str:
        """Block until the job ends (background mode and tests). Returns the state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() == RUNNING:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("ldr2hdr job did not finish in time")
            time.sleep(0.02)
        return self.state

    def cancel(self) -> None:
        """Stop the worker and forget its result. Safe to call more than once."""
        self._cancelled.set()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                logger.warning("ldr2hdr worker process %s did not exit after kill", self._process.pid)
        with self._lock:
            self.state = CANCELLED
            self.response = None
            self.message = "cancelled"
        self._cleanup()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # ------------------------------------------------------------------ thread backend
    def _run_thread(self) -> None:
        try:
            response = worker.run_request(self.request, progress=self._set_progress)
        except _Cancelled:
            return
        except Ldr2HdrError as exc:
            self._fail(exc)
            return
        except MemoryError:
            self._fail(Ldr2HdrError("out of memory (try a smaller image or tile size)"))
            return
        except Exception as exc:  # noqa: BLE001 - the UI must get a report, not a dead thread
            logger.exception("ldr2hdr worker thread failed")
            self._fail(Ldr2HdrError(f"internal error: {type(exc).__name__}: {exc}"))
            return
        with self._lock:
            if self._cancelled.is_set():
                return
            self.response = response
            self.progress, self.message = 1.0, "finished"
            self.state = DONE

    def _set_progress(self, fraction: float, message: str) -> None:
        if self.backend == "thread" and self._cancelled.is_set():
            raise _Cancelled  # unwinds the pipeline in the worker thread: no more tiles run
        with self._lock:
            if self.state == RUNNING:
                self.progress, self.message = float(fraction), message

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._cancelled.is_set():
                return
            self.error = exc
            self.state = FAILED
            self.message = str(exc)

    # ------------------------------------------------------------------ process backend
    def _start_process(self) -> None:
        self._job_dir = tempfile.mkdtemp(prefix="ldr2hdr-job-")
        worker.write_request(self._job_dir, self.request)
        command = [self.python, "-m", "ldr2hdr.inference.worker", self._job_dir]
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                env=worker_environment(), text=True, bufsize=1, creationflags=_NO_WINDOW,
            )
        except OSError as exc:
            self._cleanup()
            raise worker.DependencyError(f"cannot start the worker Python: {exc.strerror}: {worker.FIX_HINT}",
                                         self.python) from None
        self._reader = threading.Thread(target=self._read_output, name="ldr2hdr-worker-io", daemon=True)
        self._reader.start()

    def _read_output(self) -> None:
        # stdout carries JSON progress lines; stderr is kept (tail only) for error reports.
        stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        stderr_thread.start()
        for line in self._process.stdout:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "progress" in data:
                self._set_progress(float(data["progress"]), str(data.get("message", "")))
        stderr_thread.join(timeout=1.0)

    def _read_stderr(self) -> None:
        for line in self._process.stderr:
            line = line.rstrip()
            if line:
                self._stderr_tail = (self._stderr_tail + [line])[-20:]

    def _finish_process(self, code: int) -> None:
        if self._cancelled.is_set():
            return
        try:
            response = worker.read_response(self._job_dir)
        except Ldr2HdrError as exc:
            if not isinstance(exc, worker.DependencyError) and code != 0 and self._stderr_tail:
                exc = Ldr2HdrError(f"{exc}: {self._stderr_tail[-1]}")
            self._fail(exc)
        except (OSError, ValueError) as exc:
            self._fail(Ldr2HdrError(f"unreadable worker result: {exc}"))
        else:
            with self._lock:
                self.response = response
                self.progress, self.message = 1.0, "finished"
                self.state = DONE
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._job_dir is not None:
            shutil.rmtree(self._job_dir, ignore_errors=True)
            self._job_dir = None

    @property
    def job_dir(self) -> str | None:
        return self._job_dir


def run_sync(request: worker.Request, python_path: str = "") -> worker.Response:
    """Run ``request`` to completion on the calling thread's time (background mode).

    In-process when no worker Python is set, otherwise through the worker process.

    Raises:
        DependencyError: no torch (with the fix); Ldr2HdrError: the worker's error.
    """
    backend, python = choose_backend(python_path)
    if backend == "thread":
        return worker.run_request(request)
    job = Job(request, backend, python).start()
    job.wait()
    if job.state == FAILED:
        raise job.error
    return job.response


def check_worker(python_path: str = "", timeout: float = 120.0) -> str:
    """Describe where inference would run, in one line; raise DependencyError if it cannot.

    Starts the worker Python once (``-m ldr2hdr.inference.worker --check``) when one is set.
    """
    backend, python = choose_backend(python_path)
    if backend == "thread":
        report = worker.describe_environment()
    else:
        try:
            done = subprocess.run([python, "-m", "ldr2hdr.inference.worker", "--check"], capture_output=True,
                                  text=True, timeout=timeout, env=worker_environment(), check=False,
                                  creationflags=_NO_WINDOW)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise worker.DependencyError(f"cannot run the worker Python: {exc}: {worker.FIX_HINT}", python) from None
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise worker.DependencyError(f"the worker Python cannot run ldr2hdr ({last}): {worker.FIX_HINT}", python)
        report = json.loads(lines[-1])
    if backend == "process":
        # A worker process decodes files itself (same pixels as the command line).
        report["missing"] = list(report["missing"]) + list(report.get("missing_for_files") or [])
        report["missing_for_files"] = []
    if report["missing"]:
        raise worker.DependencyError(f"{', '.join(report['missing'])} not installed for {report['python']}: "
                                     f"{worker.FIX_HINT}")
    where = "in Blender's process" if backend == "thread" else f"in a worker process ({report['python']})"
    gpu = "CUDA available" if report["cuda"] else "CPU only"
    message = f"inference runs {where}: torch {report['torch']}, {gpu}"
    if report.get("missing_for_files"):
        message += f" (without {', '.join(report['missing_for_files'])}: files are decoded by Blender)"
    return message
