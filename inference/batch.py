"""Running one step of the pipeline over a batch of files: the work behind ``ldr2hdr <step>``.

Every input gets one result per output kind in ``OUTDIR``; a bad input gets one line on
stderr naming the file and the reason, and the batch goes on. Outputs are written
atomically; ``--resume`` skips inputs whose outputs are complete; the first Ctrl-C
finishes the current file. The command line (:mod:`.cli`) and the demo (:mod:`.demo`)
both run steps through :func:`run_batch`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, banded, crf, io, pipeline
from .errors import Ldr2HdrError, OutputExistsError, UnsupportedImageError
from .imaging import unit_float

logger = logging.getLogger("ldr2hdr")
SOURCE_UNITS = ("energy: sum of pixel solid angle (sr; 1 per pixel for flat photos) x Rec.709 luminance, in the "
                "EXR's units; solid_angle: sr (panoramas) or fraction of the image (photos); direction: unit "
                "vector, +Y up, -Z at the centre column (panoramas) or (x, y) in [-1, 1] (photos)")


def add_step_arguments(p: argparse.ArgumentParser, step: str) -> None:
    """Add the inputs, ``-o`` and the options of ``step`` (``estimate-crf``, ``linearize``, ...) to ``p``."""
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (folders: all images in them)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results (created if missing)")
    p.add_argument("--method", choices=pipeline.METHODS, default=pipeline.Settings().method,
                   help="learned: the trained networks; classical: sRGB curve + Kovaleski-Oliveira "
                        "expansion (default: %(default)s)")
    p.add_argument("--per-channel", action="store_true",
                   help="estimate one camera curve per colour channel (default: one gray-axis curve)")
    p.add_argument("--crf", default="auto", metavar="CURVE",
                   help="camera curve: auto (estimate), srgb, linear, gammaG (e.g. gamma2.2) or a .crf.json file")
    p.add_argument("--crf-trust", choices=pipeline.CRF_TRUST_MODES, default="auto",
                   help="learned curve: srgb-blend: blend it with sRGB by its fitted trust (plain-sRGB images come "
                        "back exactly sRGB); network: the network's curve alone; auto: srgb-blend unless the EXIF "
                        "names a camera (default: %(default)s)")
    if step != "estimate-crf":
        p.add_argument("--crf-json", action="store_true",
                       help="also write <name>.crf.json with the curve used and, when highlights are restored, "
                            "<name>.sources.json with the clipped light sources (direction, solid angle, energy, class)")
        p.add_argument("--preview", action="store_true", help="also write <name>.preview.png, a tone-mapped view")
        p.add_argument("--scale", choices=pipeline.SCALE_MODES, default="relative",
                       help="output units: relative (1 = the camera's clip level); exif: W m^-2 sr^-1 from the "
                            "photo's exposure time, f-number and ISO (relative, with a warning, without them); "
                            "match-photo: Blender's Standard view shows the photo's mid-tones at their own "
                            "brightness (default: %(default)s)")
        p.add_argument("--exposure", type=float, default=0.0, metavar="STOPS",
                       help="scale the output by 2**STOPS (on top of --scale)")
        p.add_argument("--float", dest="half", action="store_false", help="write 32-bit float EXR (default: half)")
        p.add_argument("--compression", default="zip", choices=io.EXR_COMPRESSIONS, help="EXR compression (default: zip)")
        p.add_argument("--no-dequantize", dest="dequantize", action="store_false", help="keep 8-bit steps as they are")
        p.add_argument("--dequantize-max-mp", type=float, default=16.0, metavar="MP",
                       help="dequantize only images of at most MP megapixels (0: any size; default 16: above it "
                            "dequantization costs more than half the run time for a small gain)")
        p.add_argument("--energy", choices=pipeline.ENERGY_MODES, default="auto",
                       help="auto: with the learned method, scale each clipped light source to its estimated "
                            "energy after the highlight step; off: keep what the highlight step restored "
                            "(default: %(default)s)")
    p.add_argument("--panorama", choices=pipeline.PANORAMA_MODES, default="auto",
                   help="treat inputs as 360 equirectangular panoramas (auto: when the aspect is 2:1)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where learned models run")
    p.add_argument("--tile-size", type=int, default=512, metavar="PX", help="tile edge for tiled inference (default 512)")
    p.add_argument("--precision", choices=pipeline.PRECISIONS, default="auto",
                   help="highlight network arithmetic: auto = half precision on CUDA, float32 on CPU")
    p.add_argument("--weights-dir", default="", metavar="DIR",
                   help="folder with replacement weights (*.safetensors + manifest.json); missing files "
                        "come from the bundled weights")
    p.add_argument("--max-pixels", type=int, default=io.DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse images with more pixels than this, before decoding (default %(default)s)")
    p.add_argument("--max-memory", type=float, default=None, metavar="GB",
                   help="memory limit per image: tiles shrink to fit, larger images are refused before "
                        "decoding (default: 60%% of this machine's memory)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: refuse)")
    p.add_argument("--resume", action="store_true",
                   help="skip inputs whose outputs already exist and are complete (checked, not just present)")
    p.add_argument("--report", type=Path, metavar="FILE.json", help="write a JSON report of every input")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--debug", action="store_true", help="show full tracebacks for unexpected errors")

def _settings(args, step: str) -> pipeline.Settings:
    curve: object = args.crf
    if isinstance(curve, str) and curve.lower().endswith(".json"):
        try:
            curve = crf.InverseCRF.from_json_dict(json.loads(Path(curve).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Ldr2HdrError(f"cannot read camera curve: {exc}", args.crf) from None
    elif curve != "auto":
        crf.parametric_inverse(curve)  # validate early: one error, not one per file
    return pipeline.Settings(method=args.method, crf=curve, crf_trust=args.crf_trust, panorama=args.panorama,
                             exposure=getattr(args, "exposure", 0.0), device=args.device,
                             tile_size=args.tile_size, precision=args.precision, weights_dir=args.weights_dir,
                             per_channel=args.per_channel,
                             dequantize=getattr(args, "dequantize", True), energy=getattr(args, "energy", "auto"),
                             dequantize_max_pixels=int(getattr(args, "dequantize_max_mp", 16.0) * 1e6),
                             scale=getattr(args, "scale", "relative"))

class Progress:
    """A minimal progress display on stderr: a bar on terminals, one line per file otherwise."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet = total, quiet
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()

    def update(self, done: int, name: str, status: str) -> None:
        if self.quiet:
            return
        width = 24
        fill = int(width * done / max(self.total, 1))
        line = f"[{'#' * fill}{'.' * (width - fill)}] {done}/{self.total} {status:5s} {name}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:150])
            if done == self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

def _outputs_for(step: str, args, stem: str) -> dict[str, Path]:
    out = Path(args.output)
    paths = {}
    if step == "estimate-crf":
        paths["crf"] = out / f"{stem}.crf.json"
        return paths
    paths["exr"] = out / f"{stem}.exr"
    if args.crf_json:
        paths["crf"] = out / f"{stem}.crf.json"
        if step in ("restore", "reconstruct"):
            paths["sources"] = out / f"{stem}.sources.json"
    if args.preview:
        paths["preview"] = out / f"{stem}.preview.png"
    return paths

def _write_json_atomic(path: Path, data: dict, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists (use --overwrite to replace it)", path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

def outputs_complete(path: Path, step: str, args) -> bool:
    """True when every output of ``path`` exists and is whole: the EXR decodes without error and
    names ``path`` as its source; the curve JSON parses and holds 1024 samples."""
    outputs = _outputs_for(step, args, path.stem)
    source = str(path.resolve())
    try:
        for kind, p in outputs.items():
            if not p.is_file():
                return False
            if kind == "exr":
                if io.read_exr_metadata(p).get("source_file") != source:
                    return False
                io.read_image(p)
            elif kind == "crf":
                data = json.loads(p.read_text())
                if len(data.get("inverse_crf", ())) != crf.N_SAMPLES or data.get("source_file") != source:
                    return False
            elif kind == "sources":
                data = json.loads(p.read_text())
                if not isinstance(data.get("sources"), list) or data.get("source_file") != source:
                    return False
            elif kind == "preview":
                io.read_image(p)
    except (Ldr2HdrError, OSError, ValueError):
        return False
    return True

class _StopAfterCurrent:
    """First Ctrl-C: finish the current file, then stop. Second Ctrl-C: stop at once
    (outputs are written atomically, so nothing half-written is left either way)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: keep the default behaviour
            self._previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nldr2hdr: stopping after the current file (Ctrl-C again to stop now)", file=sys.stderr)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False

def process_one(path: Path, step: str, args, settings: pipeline.Settings) -> dict:
    """Run ``step`` on one file and write its outputs. Returns a report row."""
    outputs = _outputs_for(step, args, path.stem)
    if not args.overwrite:
        for p in outputs.values():
            if p.exists():
                raise OutputExistsError("output exists (use --overwrite to replace it)", p)
    width, height, _ = io.probe_image(path, max_pixels=args.max_pixels)
    # large images go through row bands (the preview's tone mapping needs the whole image)
    in_bands = banded.applies(height, width, settings, step) and not getattr(args, "preview", False)
    limit = int(args.max_memory * 2 ** 30) if args.max_memory else pipeline.default_memory_limit()
    try:
        settings = pipeline.fit_tile_size(height, width, settings, limit, banded=in_bands)
    except Ldr2HdrError as exc:
        raise Ldr2HdrError(exc.reason, path) from None
    # 8/16-bit files are decoded to their codes and turned into floats here: the same floats
    # (unit_float), a third of OpenImageIO's own conversion time (0.11 vs 0.29 s at 4096x2048)
    img = io.read_image(path, max_pixels=args.max_pixels, codes=True)
    row: dict = {"format": img.format, "width": int(img.pixels.shape[1]), "height": int(img.pixels.shape[0])}
    warnings = []
    in_bands = in_bands and img.pixels.dtype != np.float32  # float files (HDR, signed) stay whole
    bands = None
    if img.is_hdr and step != "restore":
        # Already linear: nothing to undo, nothing clipped. Pass the radiance through.
        warnings.append("input is already HDR (float data): passed through unchanged")
        logger.warning("%s: input is already HDR (float data); passing it through unchanged", path)
        result = pipeline.Result(inverse_crf=crf.InverseCRF(crf.linear_inverse().curves, "linear (HDR input)"),
                                 linear=img.pixels,
                                 metadata={"software": f"ldr2hdr {__version__}", "method": "pass-through"})
    elif img.is_hdr:
        result = _restore_linear(img, settings)
    elif in_bands:
        bands = banded.reconstruct(img.pixels, settings, exif=img.exif)  # keeps the codes until written
        result = bands.result
    else:
        result = pipeline.run(unit_float(img.pixels), settings, steps=step, exif=img.exif, keep_intermediates=False)
    del img  # the decoded input (0.4 GB at 8K) is not needed to write the outputs (bands keep their codes)
    for note in result.notes:
        warnings.append(note)
        logger.warning("%s: %s", path, note)
    meta = dict(result.metadata, source_file=str(path.resolve()), step=step)
    if step != "estimate-crf":
        meta["inverse_crf"] = json.dumps([round(float(v), 5) for v in result.inverse_crf.gray[::4]])
        if bands is not None:
            io.write_exr_bands(outputs["exr"], bands.height, bands.width, bands.bands, metadata=meta, half=args.half,
                               compression=args.compression, overwrite=args.overwrite)
        else:
            io.write_exr(outputs["exr"], result.image, metadata=meta, half=args.half,
                         compression=args.compression, overwrite=args.overwrite)
    if "crf" in outputs:
        data = result.inverse_crf.to_json_dict()
        data.update(source_file=str(path.resolve()), software=f"ldr2hdr {__version__}")
        _write_json_atomic(outputs["crf"], data, args.overwrite)
    if "sources" in outputs:
        _write_json_atomic(outputs["sources"], {"source_file": str(path.resolve()), "software": f"ldr2hdr {__version__}",
                                                "units": SOURCE_UNITS, "sources": result.sources}, args.overwrite)
    if "preview" in outputs:
        from .tonemap import preview

        io.write_png(outputs["preview"], preview(result.image), overwrite=args.overwrite)
    if result.sources:
        row["sources"] = [{k: src[k] for k in ("class", "azimuth_deg", "elevation_deg", "solid_angle", "energy")}
                          for src in result.sources[:8]]
    row.update(outputs={k: str(v) for k, v in outputs.items()}, crf_method=result.inverse_crf.method,
               crf_confidence=float(result.inverse_crf.confidence), warnings=warnings)
    if result.image is not None:
        row["max_value"] = float(np.max(result.image))
    elif bands is not None:
        row["max_value"] = bands.max_value
    return row

def _restore_linear(img: io.LoadedImage, settings: pipeline.Settings) -> pipeline.Result:
    """``restore`` on a linear EXR (e.g. from ``linearize``): undo its exposure and recover the
    curve it was linearized with from its metadata (else sRGB), then :func:`pipeline.run_on_linear`."""
    meta = io.read_exr_metadata(img.path)
    scale = float(meta.get("exposure_scale", 1.0) or 1.0)
    linear = img.pixels / np.float32(scale)
    inv = crf.srgb_inverse()
    if "inverse_crf" in meta:
        try:
            inv = crf.from_samples(np.asarray(json.loads(meta["inverse_crf"]), dtype=np.float64), "from metadata")
        except (ValueError, TypeError):
            logger.warning("%s: unreadable inverse_crf metadata; assuming sRGB", img.path)
    try:
        return pipeline.run_on_linear(linear, inv, settings)
    except Ldr2HdrError as exc:
        raise UnsupportedImageError(exc.reason, img.path) from None

def inputs_and_output(args) -> tuple[list[Path], Path]:
    """The input files of ``args.inputs`` and the output folder ``args.output`` (created);
    raises :class:`Ldr2HdrError` for no inputs or a folder that cannot be made."""
    files = io.list_inputs(args.inputs)
    if not files:
        raise Ldr2HdrError("no input images found")
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Ldr2HdrError(f"cannot create the output folder: {exc.strerror}", out) from None
    return files, out


def run_batch(step: str, args) -> int:
    settings = _settings(args, step)
    files, out = inputs_and_output(args)
    progress = Progress(len(files), args.quiet)
    rows, failures, seen = [], 0, {}
    interrupted = False
    stopper = _StopAfterCurrent().__enter__()
    for i, path in enumerate(files, 1):
        if stopper.requested:
            interrupted = True
            break
        t0 = time.monotonic()
        row = {"input": str(path)}
        try:
            if path.stem in seen:
                raise Ldr2HdrError(f"same output name as {seen[path.stem]} (rename one of them)", path)
            seen[path.stem] = path
            if args.resume and outputs_complete(path, step, args):
                row["status"] = "skipped"
            else:
                row.update(process_one(path, step, args, settings))
                row["status"] = "ok"
        except KeyboardInterrupt:
            row.update(status="interrupted")
            interrupted = True
        except Ldr2HdrError as exc:
            row.update(status="error", error=str(exc))
            print(f"ldr2hdr: error: {exc}", file=sys.stderr)
        except MemoryError:
            row.update(status="error", error=f"{path}: out of memory")
            print(f"ldr2hdr: error: {path}: out of memory (try a smaller --tile-size or image)", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop a batch
            if args.debug:
                raise
            row.update(status="error", error=f"{path}: internal error: {type(exc).__name__}: {exc}")
            print(f"ldr2hdr: error: {path}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
                  " (rerun with --debug for details)", file=sys.stderr)
        row["seconds"] = round(time.monotonic() - t0, 3)
        failures += row["status"] == "error"
        rows.append(row)
        progress.update(i, path.name, row["status"])
        if interrupted:
            break
    stopper.__exit__(None, None, None)
    ok = sum(r["status"] == "ok" for r in rows)
    skipped_done = sum(r["status"] == "skipped" for r in rows)
    if args.report:
        _write_json_atomic(args.report, {"command": step, "software": f"ldr2hdr {__version__}",
                                         "ok": ok, "failed": failures, "skipped": skipped_done,
                                         "interrupted": interrupted, "inputs": rows}, overwrite=True)
    if not args.quiet or failures or interrupted:
        skipped = len(files) - len(rows)
        print(f"ldr2hdr {step}: {ok} ok, {failures} failed"
              + (f", {skipped_done} already done" if skipped_done else "")
              + (f", {skipped} not started (interrupted)" if interrupted else "")
              + f" -> {out}", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if failures else 0
