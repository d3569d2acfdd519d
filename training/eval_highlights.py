"""Evaluate the highlight network against the classical baseline on the EVAL split.

    python training/eval_highlights.py [--weights runs/highlights/highlight_net.safetensors] [--install]

Protocol: the evaluation references (training/split.py: EVAL_SPLIT files under
../shared/data/hdr plus Blender's studio lights), area-downsampled to at most 1024 px
wide; LDR inputs synthesized with sRGB, 8-bit PNG, 2 % and 8 % clipping
(evaluation/synth.py); linearized as the pipeline does (dequantize + sRGB decode, soft
saturation mask; with ``--learned-crf`` the learned CRF estimate replaces the true sRGB
curve, as in the default pipeline, so its curve errors show up in the highlight energy).
Methods get only those pixels:

* ``linear``: no highlight restoration (the clipped input);
* ``kovaleski2014``: the pipeline's classical step (Kovaleski-Oliveira expand map);
* ``learned``: :func:`inference.highlights.learned.restore_highlights_learned`.

Scoring: ``evaluation.samples.score`` (alignment and metrics of the project harness:
clipped energy in stops, irradiance error for panoramas, SI log2 RMSE inside the clip
mask, PU21-PSNR). Writes ``runs/highlights/eval.json`` and prints a markdown table.

``--install`` copies the evaluated weights to ``weights/highlight_net.safetensors`` and
records the manifest entry (sha256, data, command, metrics).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import split  # noqa: E402
from ldr2hdr.evaluation import references, report, synth  # noqa: E402
from ldr2hdr.evaluation.samples import score  # noqa: E402
from ldr2hdr.inference import pipeline  # noqa: E402
from ldr2hdr.inference.highlights import classical  # noqa: E402
from ldr2hdr.inference import crf  # noqa: E402
from ldr2hdr.inference.crf.network import estimate_crf_learned  # noqa: E402
from ldr2hdr.inference.highlights.learned import restore_highlights_learned  # noqa: E402
from ldr2hdr.inference.highlights.network import MIN_SIDE, WEIGHTS_FILE, model_from_state_dict  # noqa: E402
from ldr2hdr.inference.weights import load_manifest, record_weights_file, sha256_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HDR_ROOT = ROOT.parent / "shared" / "data" / "hdr"
CLIP_FRACTIONS = (0.02, 0.08)
METHODS = ("linear", "kovaleski2014", "learned")
KEYS = ("clipped_energy_stops", "clipped_energy_bias_stops", "irradiance_rel_error", "si_log2_rmse_clipped", "pu21_psnr")
LABELS = {
    "clipped_energy_stops": "energy |err| (stops)",
    "clipped_energy_bias_stops": "energy bias (stops)",
    "irradiance_rel_error": "irradiance err (pano)",
    "si_log2_rmse_clipped": "SI log2 RMSE clipped",
    "pu21_psnr": "PU21-PSNR (dB)",
}


def _mean(values) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _upsample(img: np.ndarray, k: int) -> np.ndarray:
    """Bilinear ``k``-times upsampling (a stand-in for a higher-resolution capture of the same
    scene: the energy of every region is kept, small sources get bigger in pixels)."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    up = torch.nn.functional.interpolate(t, scale_factor=k, mode="bilinear", align_corners=False)
    return up[0].permute(1, 2, 0).contiguous().numpy().clip(min=0.0)


def run(weights: Path, out_dir: Path, max_width: int, limit: int | None, tile_size: int,
        max_side: int | None = 2048, names: list[str] | None = None, upsample: int = 1,
        methods: tuple[str, ...] = METHODS, crf_weights: Path | None = None, min_side: int | None = MIN_SIDE) -> dict:
    from safetensors.torch import load_file

    model = model_from_state_dict(load_file(str(weights)))
    files = split.eval_files(HDR_ROOT)
    assert all(split.is_eval(p) for p in files)
    if names:
        files = [p for p in files if p.stem in names or p.name in names]
    if limit:
        files = files[:limit]
    inv = crf.srgb_inverse()
    settings = pipeline.Settings(method="classical")  # the classical rows; the learned row calls the network directly
    rows = []
    for path in files:
        ref = references.load_reference(path, max_width)
        pano = ref.panorama
        if upsample > 1:
            ref.pixels = _upsample(ref.pixels, upsample)
        for clip in CLIP_FRACTIONS:
            ldr, info = synth.synthesize(ref.pixels, "srgb", clip, "png")
            if crf_weights is not None:  # the default pipeline's own curve estimate instead of the true sRGB
                inv = estimate_crf_learned(ldr, weights=crf_weights)
            linear, mask = pipeline.linearize(ldr, inv, settings)
            preds, times = {}, {}
            t0 = time.perf_counter()
            preds["linear"] = linear
            times["linear"] = 0.0
            if "kovaleski2014" in methods:
                t0 = time.perf_counter()
                preds["kovaleski2014"] = pipeline.restore_highlights(linear, ldr, mask,
                                                                     settings.with_(panorama="on" if pano else "off"))
                times["kovaleski2014"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            preds["learned"] = restore_highlights_learned(linear, mask, panorama=pano, weights=model, tile_size=tile_size,
                                                          max_side=max_side, min_side=min_side)
            times["learned"] = time.perf_counter() - t0
            cache: dict = {}
            for method in methods:
                s = score(preds[method], ref.pixels, info["clip_mask"], panorama=pano, cache=cache)
                row = {"reference": path.name, "panorama": pano, "clip_fraction": clip, "method": method,
                       "seconds": round(times[method], 3), **{k: s[k] for k in KEYS}}
                rows.append(row)
            print(f"{path.name:36s} clip {clip:.2f} " + "  ".join(
                f"{m}: E {r['clipped_energy_bias_stops']:+.2f} irr {r['irradiance_rel_error']:.2f} "
                f"si {r['si_log2_rmse_clipped']:.2f} pu {r['pu21_psnr']:.1f}"
                for m, r in zip(methods, rows[-len(methods):])), flush=True)
    summary = {}
    for method in methods:
        for scope, pick in (("all", lambda r: True), ("clip0.02", lambda r: r["clip_fraction"] == 0.02),
                            ("clip0.08", lambda r: r["clip_fraction"] == 0.08)):
            sel = [r for r in rows if r["method"] == method and pick(r)]
            summary.setdefault(method, {})[scope] = {k: _mean(r[k] for r in sel) for k in KEYS}
    result = {
        "protocol": ("EVAL split (training/split.py) + Blender studio lights, <= %d px wide; synth.synthesize "
                     "srgb, png, clip %s; pipeline.linearize (dequantize + sRGB, soft mask 0.95); scored with "
                     "evaluation.samples.score. %s" % (max_width, list(CLIP_FRACTIONS), report.ALIGNMENT_STATEMENT)),
        "weights": str(weights),
        "max_side": max_side,
        "min_side": min_side,
        "upsample": upsample,
        "linearization": "srgb" if crf_weights is None else f"learned CRF estimate ({crf_weights})",
        "references": [p.name for p in files],
        "summary": summary,
        "rows": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(result, indent=2))
    return result


def _init_weights(command: str) -> Path | None:
    """The ``--init`` weights of a training command, if it names a file that exists."""
    parts = command.split()
    if "--init" in parts and parts.index("--init") + 1 < len(parts):
        path = Path(parts[parts.index("--init") + 1])
        path = path if path.is_absolute() else ROOT / path
        return path if path.is_file() else None
    return None


def _init_lineage(init_sha256: str, manifest: Path) -> dict:
    """How a fine-tune's starting weights (sha256 ``init_sha256``) were made, when they are
    the installed ones.

    Returns ``init_command`` (the command of the manifest entry with that sha256) and
    ``init_lineage`` (every command from the first from-scratch run to that one, oldest
    first); empty when the manifest describes another file."""
    entry = load_manifest(manifest).get("files", {}).get(WEIGHTS_FILE.name)
    if not entry or not entry.get("command") or entry.get("sha256") != init_sha256:
        return {}
    before = entry.get("training") or {}
    earlier = before.get("init_lineage") or ([before["init_command"]] if before.get("init_command") else [])
    return {"init_command": entry["command"], "init_lineage": [*earlier, entry["command"]]}


def _renders_command(folder: Path, count: int) -> str | None:
    """The render_scenes.py command that makes the first ``count`` renders of ``folder`` again
    (seeds and sizes from their JSON sidecars); None without sidecars."""
    folder = Path(folder) if Path(folder).is_absolute() else ROOT / folder
    metas = []
    for p in sorted(folder.glob("render_*.json")):
        try:
            metas.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    seeds = sorted(int(m["seed"]) for m in metas if "seed" in m)
    if not seeds or count <= 0:
        return None
    cmd = f"python training/render_scenes.py --count {count} --seed {seeds[0]}"
    size, samples = metas[0].get("size"), metas[0].get("samples")
    if size and int(size[1]) != 512:
        cmd += f" --size {int(size[1])}"
    if samples and int(samples) != 16:
        cmd += f" --samples {int(samples)}"
    try:
        shown = folder.resolve().relative_to(ROOT.resolve())
    except ValueError:
        shown = folder
    return cmd + f" --threads 2 --out {shown}"


def markdown(result: dict) -> str:
    lines = ["| method | scope | " + " | ".join(LABELS[k] for k in KEYS) + " |",
             "|---|---|" + "---|" * len(KEYS)]
    for method, scopes in result["summary"].items():
        for scope, vals in scopes.items():
            lines.append(f"| {method} | {scope} | " + " | ".join(f"{vals[k]:.3f}" for k in KEYS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="evaluate the highlight network (EVAL split)")
    ap.add_argument("--weights", type=Path, default=ROOT / "runs" / "highlights" / "highlight_net.safetensors")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "highlights")
    ap.add_argument("--max-width", type=int, default=1024)
    ap.add_argument("--limit", type=int, default=0, help="only the first N references (smoke runs)")
    ap.add_argument("--tile-size", type=int, default=512)
    ap.add_argument("--names", default="", help="comma-separated reference names to keep (smoke runs)")
    ap.add_argument("--max-side", type=int, default=2048, help="restore_highlights_learned max_side (0: off)")
    ap.add_argument("--min-side", type=int, default=MIN_SIDE, help="restore_highlights_learned min_side (0: off)")
    ap.add_argument("--upsample", type=int, default=1,
                    help="upsample the references K times first (how the network's result depends on resolution)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-classical", action="store_true",
                    help="skip the Kovaleski-Oliveira row (slow on upsampled references)")
    ap.add_argument("--learned-crf", type=Path, nargs="?", const=ROOT / "weights" / "crf_net.safetensors",
                    default=None, metavar="CRF_WEIGHTS",
                    help="linearize with the learned CRF estimate (these weights; default the installed ones) "
                         "instead of the true sRGB curve: the highlight energy the default pipeline delivers")
    ap.add_argument("--install", action="store_true", help="copy the weights into weights/ and record the manifest entry")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = run(args.weights, args.out, args.max_width, args.limit or None, args.tile_size, args.max_side or None,
                 [n for n in args.names.split(',') if n] or None, args.upsample,
                 tuple(m for m in METHODS if not (args.no_classical and m == "kovaleski2014")), args.learned_crf,
                 args.min_side or None)
    table = markdown(result)
    print(table)
    (args.out / "eval.md").write_text(table + "\n")
    if args.install:
        if args.limit or args.names or args.upsample != 1 or args.no_classical or args.learned_crf:
            raise SystemExit("refusing to install weights evaluated on a subset or another protocol "
                             "(--limit, --names, --upsample, --no-classical or --learned-crf)")
        summary_file = args.weights.parent / "train_summary.json"
        train = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        training = {k: train.get(k) for k in ("steps", "minutes", "device", "threads", "seed", "parameters")}
        init = _init_weights(train.get("command", ""))
        if init is not None:  # a fine-tune: name the starting weights before they are replaced
            training["init_sha256"] = sha256_of(init)
            training.update(_init_lineage(training["init_sha256"], WEIGHTS_FILE.parent / "manifest.json"))
        if train.get("renders") and train.get("renders_folder"):
            renders_cmd = _renders_command(Path(train["renders_folder"]), int(train["renders"]))
            if renders_cmd:
                training["renders_command"] = renders_cmd
        data = ("TRAIN split of training/split.py under shared/data/hdr (Poly Haven CC0 panoramas, OpenEXR "
                "sample images BSD-3, colour-hdri BSD-3); EVAL split and Blender studio lights held out")
        if train.get("renders"):
            data += (f"; plus {train['renders']} synthetic panoramas rendered by training/render_scenes.py "
                     f"(Blender Cycles) in {100 * float(train.get('render_fraction') or 0):.0f} % of the panorama draws")
        shutil.copyfile(args.weights, WEIGHTS_FILE)
        learned, ko = result["summary"]["learned"]["all"], result["summary"]["kovaleski2014"]["all"]
        no_restore = result["summary"]["linear"]["all"]
        entry = record_weights_file(
            WEIGHTS_FILE,
            kind="highlight restoration network (masked-feature U-Net, log domain, global context)",
            data=data,
            command=train.get("command", "python training/train_highlights.py --minutes 80 --threads 1"),
            evaluate_command="python training/eval_highlights.py --install",
            training=training,
            metrics={
                "protocol": "EVAL split + studio lights, srgb png, clip 2% and 8%, harness alignment",
                "learned": {k: round(v, 4) for k, v in learned.items()},
                "kovaleski2014": {k: round(v, 4) for k, v in ko.items()},
                "linear_no_restoration": {k: round(v, 4) for k, v in no_restore.items()},
            },
        )
        print(f"installed {WEIGHTS_FILE} sha256 {entry['sha256'][:12]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
