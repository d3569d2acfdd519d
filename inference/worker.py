"""The worker side of the Blender extension: settings + pixels in, pixels + curve + log out.

Blender's Python has no torch, so the extension runs inference either in a thread of
its own process (when torch imports there) or in a separate process started with a
Python that has torch (``python -m ldr2hdr.inference.worker JOB_DIR``). Both call
:func:`run_request`, which calls :func:`ldr2hdr.inference.pipeline.run`, the one entry
point shared with the command line, so the node editor and ``ldr2hdr reconstruct`` give
the same pixels for the same settings.

Process protocol (all files inside ``JOB_DIR``, written by :func:`write_request`):

* ``request.json``: ``{"step", "settings", "filepath" | null, "pixels": "input.npy" | null}``;
  ``input.npy`` float32 ``HxWx3`` in [0, 1], top-down rows.
* stdout: one JSON object per line, ``{"progress": 0..1, "message": str}``.
* on success: ``output.npy`` (float32 ``HxWx3`` linear, never clamped; absent for
  ``estimate-crf``), ``inverse_crf.npy`` (float32 ``3x1024``) and ``result.json``
  (``{"ok": true, "metadata", "crf_method", "crf_confidence", "log"}``).
* on failure: ``result.json`` with ``{"ok": false, "error": one line, "kind": ...}`` and a
  non-zero exit status (2 = a reported error, 3 = missing dependency).

``python -m ldr2hdr.inference.worker --check`` prints :func:`describe_environment` as JSON.

Nothing here imports bpy. Module-level imports are standard library only, so that a
Python without numpy or torch can still start the worker and say what is missing.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import Ldr2HdrError, UnsupportedImageError

logger = logging.getLogger(__name__)

STEPS = ("estimate-crf", "linearize", "restore", "reconstruct")

#: What a worker Python must be able to import, with the package name to install.
REQUIRED_MODULES = (("numpy", "numpy"), ("torch", "torch"))
#: Needed only to read image files (``filepath=`` requests).
FILE_MODULES = (("OpenImageIO", "openimageio"),)

FIX_HINT = (
    "set Preferences > Add-ons > ldr2hdr > Worker Python to the .venv/bin/python "
    "(Windows: .venv\\Scripts\\python.exe) of an ldr2hdr checkout (run ./setup.sh there first; see the README)"
)

EXIT_OK, EXIT_ERROR, EXIT_MISSING = 0, 2, 3

ProgressFn = Callable[[float, str], None]


class DependencyError(Ldr2HdrError):
    """The Python running inference lacks a package it needs (usually torch)."""


@dataclass
class Request:
    """One unit of work.

    Attributes:
        step: ``"estimate-crf"``, ``"linearize"``, ``"restore"`` or ``"reconstruct"``.
        settings: keyword arguments of :class:`~ldr2hdr.inference.pipeline.Settings`
            (plain JSON values; an explicit curve is given by name, e.g. ``"srgb"``).
        pixels: float32 ``HxWx3`` LDR values in [0, 1], top-down rows; or None with ``filepath``.
        filepath: an image file read exactly as the command line reads it; or None.
    """

    step: str
    settings: dict = field(default_factory=dict)
    pixels: Any = None
    filepath: str | None = None

    def __post_init__(self):
        if self.step not in STEPS:
            raise Ldr2HdrError(f"unknown step {self.step!r}; choose one of {', '.join(STEPS)}")
        if (self.pixels is None) == (self.filepath is None):
            raise Ldr2HdrError("a request needs exactly one of pixels or filepath")


@dataclass
class Response:
    """What the worker sends back.

    Attributes:
        pixels: float32 ``HxWx3`` linear radiance (not clamped), or None for ``estimate-crf``.
        inverse_crf: float32 ``(3, 1024)``: linear value for pixel value ``i / 1023``.
        crf_method, crf_confidence: how the curve was obtained and how sure the method is.
        metadata: the pipeline's metadata (JSON values).
        log: warnings and notes to show the user, one line each.
    """

    pixels: Any
    inverse_crf: Any
    crf_method: str
    crf_confidence: float
    metadata: dict = field(default_factory=dict)
    log: list = field(default_factory=list)


def missing_modules(with_files: bool = False) -> list[str]:
    """Package names (as pip knows them) this Python lacks for inference."""
    wanted = REQUIRED_MODULES + (FILE_MODULES if with_files else ())
    missing = []
    for module, package in wanted:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


def check_dependencies(with_files: bool = False, python: str | None = None) -> None:
    """Raise :class:`DependencyError` (with the fix) when this Python cannot run inference."""
    missing = missing_modules(with_files)
    if missing:
        who = python or sys.executable
        raise DependencyError(f"{', '.join(missing)} not installed for the Python that runs the model ({who}): "
                              f"{FIX_HINT}")


class _LogCollector(logging.Handler):
    """Keeps the ldr2hdr warnings of one run so the Blender side can show them."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(" ".join(record.getMessage().split()))


def settings_from_dict(values: dict):
    """Build :class:`~ldr2hdr.inference.pipeline.Settings` from plain values (unknown keys refused)."""
    from . import pipeline

    known = set(pipeline.Settings.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise Ldr2HdrError(f"unknown settings: {', '.join(unknown)}")
    return pipeline.Settings(**values)


def _report(progress: ProgressFn | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def run_request(request: Request, progress: ProgressFn | None = None) -> Response:
    """Run one request in this process through :func:`pipeline.run`.

    Raises:
        DependencyError: torch/numpy (or OpenImageIO for files) missing here.
        Ldr2HdrError: bad input or settings (one line, with the file when there is one).
    """
    check_dependencies(with_files=request.filepath is not None)
    import numpy as np

    from . import pipeline

    settings = settings_from_dict(request.settings)
    collector = _LogCollector()
    package_logger = logging.getLogger(__name__.rsplit(".", 2)[0])
    package_logger.addHandler(collector)
    try:
        exif = None
        if request.filepath is not None:
            from . import io

            _report(progress, 0.05, "reading image")
            loaded = io.read_image(request.filepath)
            if loaded.is_hdr:
                raise UnsupportedImageError("already an HDR (float) image: nothing to reconstruct; "
                                            "use it directly (e.g. Set World Lighting)", request.filepath)
            ldr, exif = loaded.pixels, loaded.exif
        else:
            ldr = np.asarray(request.pixels, dtype=np.float32)
        _report(progress, 0.1, f"running {request.step}")
        result = pipeline.run(ldr, settings, steps=request.step, exif=exif,
                              progress=lambda f, message: _report(progress, 0.1 + 0.85 * f, message))
        collector.lines.extend(result.notes)  # e.g. no EXIF: relative scale kept
    finally:
        package_logger.removeHandler(collector)
    _report(progress, 0.95, "done")
    image = result.image if request.step != "estimate-crf" else None
    return Response(
        pixels=None if image is None else np.ascontiguousarray(image, dtype=np.float32),
        inverse_crf=np.ascontiguousarray(result.inverse_crf.per_channel(), dtype=np.float32),
        crf_method=str(result.inverse_crf.method),
        crf_confidence=float(result.inverse_crf.confidence),
        metadata=_json_safe(result.metadata),
        log=collector.lines,
    )


def _json_safe(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[str(key)] = value
        elif isinstance(value, (list, tuple, dict)):
            out[str(key)] = json.dumps(value)  # e.g. the light sources: parsed again by the operators
        else:
            out[str(key)] = str(value)
    return out


# --------------------------------------------------------------------------- process protocol


def write_request(job_dir: str | os.PathLike, request: Request) -> None:
    """Write ``request`` into ``job_dir`` for ``python -m ldr2hdr.inference.worker job_dir``."""
    import numpy as np

    job = Path(job_dir)
    job.mkdir(parents=True, exist_ok=True)
    pixels_name = None
    if request.pixels is not None:
        pixels_name = "input.npy"
        np.save(job / pixels_name, np.ascontiguousarray(request.pixels, dtype=np.float32), allow_pickle=False)
    data = {"step": request.step, "settings": request.settings, "filepath": request.filepath,
            "pixels": pixels_name}
    (job / "request.json").write_text(json.dumps(data), encoding="utf-8")


def read_request(job_dir: str | os.PathLike) -> Request:
    job = Path(job_dir)
    data = json.loads((job / "request.json").read_text(encoding="utf-8"))
    pixels = None
    if data.get("pixels"):
        import numpy as np

        pixels = np.load(job / Path(data["pixels"]).name, allow_pickle=False)
    return Request(step=data["step"], settings=data.get("settings") or {}, pixels=pixels,
                   filepath=data.get("filepath"))


def write_response(job_dir: str | os.PathLike, response: Response) -> None:
    import numpy as np

    job = Path(job_dir)
    if response.pixels is not None:
        np.save(job / "output.npy", response.pixels, allow_pickle=False)
    np.save(job / "inverse_crf.npy", response.inverse_crf, allow_pickle=False)
    data = {"ok": True, "metadata": response.metadata, "crf_method": response.crf_method,
            "crf_confidence": response.crf_confidence, "log": response.log,
            "pixels": response.pixels is not None}
    _write_json_atomic(job / "result.json", data)


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def read_response(job_dir: str | os.PathLike) -> Response:
    """Read what a worker process left in ``job_dir``.

    Raises:
        DependencyError / Ldr2HdrError: the error the worker reported.
    """
    import numpy as np

    job = Path(job_dir)
    result_file = job / "result.json"
    if not result_file.is_file():
        raise Ldr2HdrError("the worker process ended without a result")
    data = json.loads(result_file.read_text(encoding="utf-8"))
    if not data.get("ok"):
        error_class = DependencyError if data.get("kind") == "missing-dependency" else Ldr2HdrError
        raise error_class(data.get("error") or "the worker failed without a reason")
    pixels = np.load(job / "output.npy", allow_pickle=False) if data.get("pixels") else None
    return Response(pixels=pixels, inverse_crf=np.load(job / "inverse_crf.npy", allow_pickle=False),
                    crf_method=data["crf_method"], crf_confidence=float(data["crf_confidence"]),
                    metadata=data.get("metadata") or {}, log=list(data.get("log") or []))


def describe_environment() -> dict:
    """What this Python offers for inference.

    Returns ``{"python", "missing", "missing_for_files", "torch", "cuda"}``: ``missing`` lists
    the packages without which nothing runs, ``missing_for_files`` those needed only to read
    image files (``filepath=`` runs).
    """
    missing = missing_modules(with_files=False)
    for_files = [p for p in missing_modules(with_files=True) if p not in missing]
    report = {"python": sys.executable, "missing": missing, "missing_for_files": for_files,
              "torch": None, "cuda": False}
    if "torch" not in missing:
        import torch

        report["torch"] = torch.__version__
        report["cuda"] = bool(torch.cuda.is_available())
    return report


def _emit_progress(fraction: float, message: str) -> None:
    sys.stdout.write(json.dumps({"progress": round(float(fraction), 4), "message": message}) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m ldr2hdr.inference.worker JOB_DIR``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--check"]:
        report = describe_environment()
        sys.stdout.write(json.dumps(report) + "\n")
        return EXIT_MISSING if report["missing"] else EXIT_OK
    if len(argv) != 1:
        sys.stderr.write("usage: python -m ldr2hdr.inference.worker JOB_DIR | --check\n")
        return EXIT_ERROR
    job = Path(argv[0])
    try:
        missing = missing_modules(with_files=False)
        if missing:
            raise DependencyError(f"{', '.join(missing)} not installed for the worker Python "
                                  f"({sys.executable}): {FIX_HINT}")
        request = read_request(job)
        _emit_progress(0.02, "worker started")
        response = run_request(request, progress=_emit_progress)
        write_response(job, response)
    except DependencyError as exc:
        _write_json_atomic(job / "result.json", {"ok": False, "error": str(exc), "kind": "missing-dependency"})
        return EXIT_MISSING
    except Ldr2HdrError as exc:
        _write_json_atomic(job / "result.json", {"ok": False, "error": str(exc), "kind": type(exc).__name__})
        return EXIT_ERROR
    except MemoryError:
        _write_json_atomic(job / "result.json", {"ok": False, "error": "out of memory (try a smaller image or tile size)",
                                                 "kind": "memory"})
        return EXIT_ERROR
    _emit_progress(1.0, "finished")
    return EXIT_OK


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="ldr2hdr worker: %(levelname)s: %(message)s")
    sys.exit(main())
