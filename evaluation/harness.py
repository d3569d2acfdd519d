"""Evaluation harness: synthesize LDR inputs from HDR references, reconstruct, score.

Protocol (deterministic for a given seed):

1. References: ``.exr`` / ``.hdr`` files found (recursively) in the given folders; files the
   fixed split marks as *training* files (``training/split.py``) are skipped. The default
   references are the evaluation split of ``/work/shared/data/hdr`` plus Blender's studio
   lights. Each reference is area-downsampled to at most ``max_width`` pixels wide (1024;
   512 in quick mode). A 2:1 reference is treated as an equirect panorama.
2. For each reference, LDR inputs are synthesized (:mod:`.synth`) for every combination of
   camera curve (``srgb``; 3 of the 10 DoRF test curves picked per reference from a hash
   of its name, all 10 in full mode; the Blender views ``agx``, ``filmic``,
   ``khronos-pbr-neutral``), clip fraction (0.02, 0.08) and codec (8-bit PNG, JPEG q90).
3. Every method gets only the LDR pixels and what a user would know (panorama or not);
   never the exposure, the true curve or the clip mask.
4. Metrics (:mod:`.metrics`), all after one global alignment per sample:
   ``s = exp(median(log Y_ref - log Y_pred))`` over the pixels that are *not clipped* in
   the LDR input, excluding the 5 % darkest and brightest of them (reference luminance).

Methods are plain callables ``f(ldr HxWx3 [0,1], info) -> (hdr HxWx3, inverse_crf or None)``
in a registry (:func:`.methods.register_method`), so learned models plug in by name.

This module runs the protocol (:func:`evaluate`, :func:`merge_results`, the ``ldr2hdr eval``
options); the steps live beside it: :mod:`.references` (finding and loading references),
:mod:`.samples` (the synthesized photos of a reference and their scores), :mod:`.methods`
(the registry and the baselines) and :mod:`.report` (tables and JSON).
"""


from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

from ..inference.errors import Ldr2HdrError
from . import synth
from .methods import _unavailable_reason, available_methods, get_method
from .references import MAX_WIDTH, _quick_subset, default_reference_paths, find_references, load_reference
from .report import ALIGNMENT_STATEMENT, _write_json, aggregate, markdown_report
from .samples import _available_views, _curves_for, _run_sample

logger = logging.getLogger(__name__)


DEFAULT_OUT_DIR = Path("runs/eval")
DEFAULT_METHODS = ("srgb-clip", "gamma2.2", "masia2017", "kovaleski2014", "budget-const", "ldr2hdr-classical")
CLIP_FRACTIONS = (0.02, 0.08)
CODECS = ("png", "jpeg90")
QUICK_MAX_WIDTH = 512
QUICK_CLIP_FRACTIONS = (0.02, 0.08)
QUICK_CODECS = ("jpeg90",)


def evaluate(
    ref_dirs: list[str | Path] | None = None,
    methods: list[str] | tuple[str, ...] = DEFAULT_METHODS,
    out_dir: str | Path = DEFAULT_OUT_DIR,
    quick: bool = False,
    *,
    full: bool = False,
    max_width: int | None = None,
    seed: int = 0,
    exclude_training: bool = True,
    dorf_path: str | Path | None = None,
    clip_fractions: tuple[float, ...] | None = None,
    codecs: tuple[str, ...] | None = None,
    curves: list[str] | None = None,
    shard: tuple[int, int] | None = None,
    weights_dir: str | Path | None = None,
) -> dict:
    """Run the protocol and write ``results.json`` and ``results.md`` into ``out_dir``.

    Args:
        ref_dirs: folders / files of references; ``None`` = :func:`default_reference_paths`.
        methods: registry names (see :func:`available_methods`).
        out_dir: output folder (created).
        quick: small subset (4 panoramas + 2 flat references, 512 px wide, curves srgb /
            one DoRF test curve / agx / khronos-pbr-neutral, clip 0.02 and 0.08, JPEG q90 only).
        full: all 10 DoRF test curves per reference instead of 3.
        max_width: override the downsampling width.
        seed: changes the DoRF subset per reference (results are deterministic per seed).
        exclude_training: skip files that the fixed split marks as training files.
        dorf_path: DoRF ``.mat`` (default :data:`synth.DEFAULT_DORF_PATH`); DoRF curves are
            skipped with a warning when it is missing.
        clip_fractions, codecs, curves: override the protocol's lists (``curves`` is used
            as given for every reference).
        shard: ``(i, n)`` evaluates only references ``i, i+n, i+2n, ...`` (0-based), so n
            processes can share the work; :func:`merge_results` joins their outputs.
        weights_dir: a folder of candidate model weights with its own ``manifest.json``
            (``pipeline.Settings.weights_dir``) for the ldr2hdr methods, so a candidate is
            scored without replacing the bundled ``weights/`` under a running evaluation.

    Returns:
        The summary dict (also written as JSON): ``config``, ``references``, ``rows``,
        ``summary`` (``by_method``, ``by_method_family``), ``unavailable_methods``.

    Raises:
        Ldr2HdrError: no references found, an unknown method name, or a ``weights_dir``
            that is not a folder.
    """
    t_start = time.perf_counter()
    if weights_dir:
        from ..inference import pipeline

        # the pipeline's own settings check, once before any work: otherwise every sample of a
        # long run records the same error row
        pipeline.Settings(weights_dir=str(weights_dir))
    mode = "quick" if quick else ("full" if full else "standard")
    specs = [get_method(m) for m in methods]
    paths = default_reference_paths() if ref_dirs is None else find_references(ref_dirs,
                                                                             exclude_training=exclude_training)
    if not paths:
        raise Ldr2HdrError("no HDR references (.exr/.hdr) found to evaluate on")
    width = max_width or (QUICK_MAX_WIDTH if quick else MAX_WIDTH)
    clip_fractions = tuple(clip_fractions or (QUICK_CLIP_FRACTIONS if quick else CLIP_FRACTIONS))
    codecs = tuple(codecs or (QUICK_CODECS if quick else CODECS))

    if quick:
        paths = _quick_subset(paths)
    if shard is not None:
        index, count = shard
        if not (count >= 1 and 0 <= index < count):
            raise Ldr2HdrError(f"bad shard {index}/{count}: use I/N with 0 <= I < N")
        paths = paths[index::count]
    refs = [load_reference(p, width) for p in paths]

    dorf_names: list[str] = []
    dorf_file = Path(dorf_path) if dorf_path else synth.DEFAULT_DORF_PATH
    if curves is None:
        if dorf_file.is_file():
            dorf_names = synth.dorf_test_curve_names(dorf_file)
        else:
            logger.warning("DoRF curves not found at %s; evaluating without them", dorf_file)
    views = _available_views() if curves is None else []

    unavailable: dict[str, str] = {}
    runnable = []
    for spec in specs:
        reason = _unavailable_reason(spec)
        if reason:
            logger.warning("method %s unavailable: %s", spec.name, reason)
            unavailable[spec.name] = reason
        else:
            runnable.append(spec)

    rows = []
    for ref in refs:
        ref_curves = list(curves) if curves is not None else _curves_for(ref.label, mode, dorf_names, views, seed)
        for curve in ref_curves:
            for clip in clip_fractions:
                for codec in codecs:
                    rows += _run_sample(ref, curve, clip, codec, runnable, dorf_file, seed, weights_dir)
        logger.info("evaluated %s (%d rows so far)", ref.label, len(rows))

    summary = {
        "config": {
            "mode": mode,
            "methods": list(methods),
            "max_width": width,
            "clip_fractions": list(clip_fractions),
            "codecs": list(codecs),
            "view_curves": views,
            "dorf_test_curves": dorf_names,
            "seed": seed,
            "shard": list(shard) if shard else None,
            "weights_dir": str(weights_dir) if weights_dir else None,
            "alignment": ALIGNMENT_STATEMENT,
            "python": platform.python_version(),
        },
        "references": [
            {"label": r.label, "path": str(r.path), "panorama": r.panorama,
             "original_size": list(r.original_size), "eval_size": [r.pixels.shape[1], r.pixels.shape[0]]}
            for r in refs
        ],
        "unavailable_methods": unavailable,
        "rows": rows,
        "summary": {
            "by_method": aggregate(rows, ("method",)),
            "by_method_family": aggregate(rows, ("method", "curve_family")),
        },
    }
    summary["seconds_total"] = time.perf_counter() - t_start
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "results.json", summary)
    (out / "results.md").write_text(markdown_report(summary), encoding="utf-8")
    logger.info("wrote %s and %s (%.1f s)", out / "results.json", out / "results.md", summary["seconds_total"])
    return summary


def merge_results(files: list[str | Path], out_dir: str | Path) -> dict:
    """Join ``results.json`` files of shards (or of method subsets run separately with the same
    protocol) into one summary with re-aggregated tables; writes results.json/.md to ``out_dir``."""
    parts = [json.loads(Path(f).read_text(encoding="utf-8")) for f in files]
    if not parts:
        raise Ldr2HdrError("nothing to merge")
    rows = [row for part in parts for row in part["rows"]]
    config = dict(parts[0]["config"])
    config["methods"] = sorted({m for part in parts for m in part["config"]["methods"]})
    config["shard"] = None
    config["merged_from"] = [str(f) for f in files]
    refs = {r["label"]: r for part in parts for r in part["references"]}
    summary = {
        "config": config,
        "references": list(refs.values()),
        "unavailable_methods": {k: v for part in parts for k, v in part.get("unavailable_methods", {}).items()},
        "rows": rows,
        "summary": {
            "by_method": aggregate(rows, ("method",)),
            "by_method_family": aggregate(rows, ("method", "curve_family")),
        },
        "seconds_total": sum(part.get("seconds_total", 0.0) for part in parts),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "results.json", summary)
    (out / "results.md").write_text(markdown_report(summary), encoding="utf-8")
    return summary


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``eval`` options to an argparse parser (used by ``ldr2hdr eval`` and training/evaluate.py)."""
    parser.add_argument("refs", nargs="*", help="folders/files of .exr/.hdr references "
                        "(default: the evaluation split of ../shared/data/hdr + Blender's studio lights)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help="comma-separated method names (default: %(default)s)")
    parser.add_argument("--out", default=str(DEFAULT_OUT_DIR), help="output folder (default: %(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small subset, a few minutes on 2 CPU cores")
    mode.add_argument("--full", action="store_true", help="all 10 DoRF test curves per reference")
    parser.add_argument("--max-width", type=int, default=None, help="downsample references to this width")
    parser.add_argument("--seed", type=int, default=0, help="protocol seed (default: %(default)s)")
    parser.add_argument("--include-training", action="store_true",
                        help="also evaluate on files the fixed split reserves for training")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for the methods")
    parser.add_argument("--list-methods", action="store_true", help="list the registered methods and exit")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="evaluate only every N-th reference starting at I (run N processes, then --merge)")
    parser.add_argument("--weights-dir", default=None, metavar="DIR",
                        help="candidate model weights (a folder with its own manifest.json) for the ldr2hdr "
                             "methods instead of the bundled weights/")
    parser.add_argument("--curves", default=None, metavar="LIST",
                        help="comma-separated camera curves for every reference instead of the protocol's "
                             "(e.g. srgb,agx,khronos-pbr-neutral,dorf-11)")
    parser.add_argument("--codecs", default=None, metavar="LIST", help="comma-separated codecs (png, jpeg90)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="RESULTS_JSON",
                        help="join results.json files of shards or method subsets into --out")
    return parser


def _list_arg(value: str | None) -> list[str] | None:
    return [v.strip() for v in str(value).split(",") if v.strip()] if value else None


def run_eval(args: argparse.Namespace) -> int:
    """Run the evaluation from parsed arguments; writes the markdown table to stdout. Returns the exit code."""
    if args.list_methods:
        for name in available_methods():
            spec = get_method(name)
            reason = _unavailable_reason(spec)
            sys.stdout.write(f"{name}\t{spec.description}{'  [unavailable: ' + reason + ']' if reason else ''}\n")
        return 0
    if args.merge:
        summary = merge_results(args.merge, args.out)
        sys.stdout.write(markdown_report(summary))
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    shard = None
    if args.shard:
        try:
            index, count = (int(v) for v in str(args.shard).split("/"))
        except ValueError:
            raise Ldr2HdrError(f"bad --shard {args.shard!r}: use I/N, e.g. 0/2") from None
        shard = (index, count)
    methods = [m.strip() for m in str(args.methods).split(",") if m.strip()]
    summary = evaluate(
        args.refs or None,
        methods,
        args.out,
        quick=args.quick,
        full=args.full,
        max_width=args.max_width,
        seed=args.seed,
        exclude_training=not args.include_training,
        shard=shard,
        weights_dir=args.weights_dir,
        curves=_list_arg(args.curves),
        codecs=tuple(_list_arg(args.codecs)) if args.codecs else None,
    )
    sys.stdout.write(markdown_report(summary))
    errors = sum(1 for r in summary["rows"] if r.get("status") != "ok")
    return 1 if errors or summary["unavailable_methods"] else 0


main_eval = run_eval
