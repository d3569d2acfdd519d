"""Time and peak memory of restore_highlights_learned on large panoramas.

    python training/bench_highlights.py [--runs 3] [--sizes 1024x512,4096x2048,8192x4096] [--scenes scene,dense]
    python training/bench_highlights.py --device cuda --precision bfloat16     # on a CUDA GPU

Each (size, scene) runs in a fresh subprocess so its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that case alone; the peak
includes the input arrays (linear radiance + mask) and the output, as a user of the
function would hold them. Time: median of ``--runs`` calls of the restore step alone.

Scenes (built row band by row band so building them does not inflate the peak):

* ``scene``: a plausible outdoor panorama: sky gradient, textured ground, a clipped sun
  with a glow, a row of bright windows (about 1-3 % of the pixels clipped);
* ``dense``: the worst case for the tile skipping: the same plus small clipped spots
  in every tile, so every tile runs the network.

Writes ``runs/highlights/bench.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BAND = 256


def _srgb_round_trip(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear band -> (linearized 8-bit sRGB band, soft mask band, LDR band), as the pipeline sees it."""
    from ldr2hdr.evaluation import synth
    from ldr2hdr.inference.crf.dequantize import soft_saturation_mask

    ldr = synth.quantize_png8(synth.srgb_encode(x))
    return synth.srgb_decode(ldr).astype(np.float32), soft_saturation_mask(ldr), ldr


def build_scene(h: int, w: int, dense: bool, seed: int = 0, with_ldr: bool = False):
    """-> ``(linear, mask)``, or ``(linear, mask, ldr)`` with ``with_ldr`` (the energy step needs it)."""
    rng = np.random.default_rng(seed)
    linear = np.empty((h, w, 3), np.float32)
    mask = np.empty((h, w), np.float32)
    ldr = np.empty((h, w, 3), np.float32) if with_ldr else None
    coarse = rng.random((h // 32 + 2, w // 32 + 2, 3)).astype(np.float32)
    fine = rng.random((64, 64, 3)).astype(np.float32)
    sun_r, sun_c, sun_rad = 0.3 * h, 0.7 * w, 0.006 * h
    cols = np.arange(w)
    for r0 in range(0, h, BAND):
        r1 = min(h, r0 + BAND)
        rows = np.arange(r0, r1)[:, None]
        v = rows / h
        sky = (0.25 + 0.35 * (1 - 2 * v))[..., None] * np.array([0.7, 0.85, 1.0], np.float32)
        tex = coarse[(rows // 32), (cols // 32)[None, :]]
        ground = 0.05 + 0.2 * tex * fine[np.arange(r0, r1)[:, None] % 64, cols[None, :] % 64]
        img = np.where((v < 0.5)[..., None], np.broadcast_to(sky, (r1 - r0, w, 3)), ground).astype(np.float32)
        d2 = ((rows - sun_r) ** 2 + (cols[None, :] - sun_c) ** 2) / sun_rad ** 2
        img += (5e3 * np.exp(-d2) + 3.0 * np.exp(-d2 / 40.0))[..., None].astype(np.float32)
        win = (v > 0.55) & (v < 0.6) & ((cols[None, :] // (w // 64)) % 3 == 0) & (cols[None, :] < w // 3)
        img[win] = 2.5
        if dense:
            spot = ((rows % 256) < 6) & ((cols[None, :] % 256) < 6)
            img[spot] = 4.0
        linear[r0:r1], mask[r0:r1], band_ldr = _srgb_round_trip(img)
        if with_ldr:
            ldr[r0:r1] = band_ldr
    return (linear, mask, ldr) if with_ldr else (linear, mask)


def child(h: int, w: int, runs: int, scene: str, tile: int, weights: str | None, threads: int,
          device: str = "cpu", precision: str = "auto", with_energy: bool = False) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)

    from ldr2hdr.inference.highlights.learned import restore_highlights_learned
    from ldr2hdr.inference.highlights.network import HighlightNet, load_model, model_from_state_dict

    t0 = time.perf_counter()
    built = build_scene(h, w, scene == "dense", with_ldr=with_energy)
    linear, mask = built[0], built[1]
    build_s = time.perf_counter() - t0
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if weights == "installed":
        model = load_model(device="cuda" if device == "cuda" else "cpu")
    elif weights:
        from safetensors.torch import load_file

        model = model_from_state_dict(load_file(weights))
    else:
        model = HighlightNet().eval()
    times, energy_times, n_sources = [], [], 0
    if with_energy:
        from ldr2hdr.inference.highlights import energy

        estimator = energy.load_model()
    for _ in range(runs):
        t0 = time.perf_counter()
        out = restore_highlights_learned(linear, mask, panorama=True, tile_size=tile, weights=model,
                                         device=device, precision=precision)
        if device == "cuda":
            torch.cuda.synchronize()
        if with_energy:
            t1 = time.perf_counter()
            out, found = energy.restore_energy(out, linear, built[2], panorama=True, weights=estimator)
            energy_times.append(time.perf_counter() - t1)
            n_sources = len(found)
        times.append(time.perf_counter() - t0)
        del out
    return {
        "size": f"{w}x{h}", "scene": scene, "tile": tile, "runs": runs,
        "seconds": [round(t, 2) for t in times], "median_s": round(statistics.median(times), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_inputs_mb": round(rss_inputs, 1),
        "clipped_fraction": round(float((mask > 0).mean()), 4),
        "build_s": round(build_s, 1), "torch_threads": torch.get_num_threads(),
        "device": device, "precision": precision,
        "energy_median_s": round(statistics.median(energy_times), 2) if energy_times else None,
        "sources": n_sources if with_energy else None,
        "gpu_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
    }


def _mpix(size: str) -> float:
    w, h = (int(v) for v in size.split("x"))
    return w * h / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="benchmark restore_highlights_learned on big panoramas")
    ap.add_argument("--sizes", default="1024x512,4096x2048,8192x4096")
    ap.add_argument("--scenes", default="scene,dense")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--weights", default="installed",
                    help="'installed' (weights/), a safetensors path, or '' for an untrained model (same speed)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the child (0: torch's default)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--precision", default="auto", help="auto | float32 | float16 | bfloat16 (the network's arithmetic)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "highlights")
    ap.add_argument("--energy", action="store_true",
                    help="time the energy step too (sources + estimator + rescale; its share in its own column)")
    ap.add_argument("--child", nargs=2, type=int, metavar=("H", "W"), help=argparse.SUPPRESS)
    ap.add_argument("--scene", default="scene", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.runs, args.scene, args.tile, args.weights,
                               args.threads, args.device, args.precision, args.energy)))
        return 0
    results = []
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        for scene in args.scenes.split(","):
            runs = args.runs if w * h <= 4096 * 2048 else max(1, args.runs - 1)
            cmd = [sys.executable, __file__, "--child", str(h), str(w), "--runs", str(runs), "--scene", scene,
                   "--tile", str(args.tile), "--weights", args.weights, "--threads", str(args.threads),
                   "--device", args.device, "--precision", args.precision] + (["--energy"] if args.energy else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                results.append({"size": size, "scene": scene, "error": proc.stderr.strip().splitlines()[-1:]})
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            print(json.dumps(res), flush=True)
            results.append(res)
    machine = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
               "load_avg_at_end": os.getloadavg()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print(f"machine: {os.cpu_count()} CPUs, load average at end {os.getloadavg()[0]:.1f}")
    print("| size | scene | clipped | tile | device | median time (s) | of it energy step (s) | MP/s | runs (s) | peak RSS (MB) | RSS after inputs (MB) | GPU peak (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['size']} | {r['scene']} | failed: {r['error']} |")
            continue
        print(f"| {r['size']} | {r['scene']} | {100 * r['clipped_fraction']:.1f} % | {r['tile']} | "
              f"{r['gpu'] or 'cpu'} {r['precision']} | {r['median_s']} | {r.get('energy_median_s') or '-'} | "
              f"{_mpix(r['size']) / max(r['median_s'], 1e-9):.2f} | "
              f"{r['seconds']} | {r['peak_rss_mb']} | {r['rss_after_inputs_mb']} | {r['gpu_peak_mb'] or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
