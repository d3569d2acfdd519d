"""End-to-end speed and memory of the whole pipeline, stage by stage, against the IO floor.

    python training/bench_pipeline.py [--sizes 1024,4096,8192] [--runs 3] [--threads 2]
    python training/bench_pipeline.py --batch 40 [--runs 3]     # throughput of one batch command

For each width W (panoramas W x W/2) the script makes its own input: a deterministic 8-bit
JPEG (quality 90) of a smooth sky with texture, a clipped sun and a few clipped lamps. Then, each
in a fresh process (so torch and the package are imported every time, as a user's run does):

* ``ldr2hdr reconstruct IN.jpg -o OUT`` (the command as users run it): wall time and peak RSS;
* the same steps called one by one, timed per stage: import, decode, curve (the CRF network),
  dequantize, linearize (the curve lookup), highlights (the network), sources/energy, encode
  (half-float EXR, zip);
* the IO floor: ``oiiotool IN.jpg -d half -o FLOOR.exr`` (decode + encode, nothing else).

Median of ``--runs`` runs per size; prints a Markdown table (and ``--json`` writes the numbers).

``--batch N``: instead, N inputs of the held-out kind in one folder (two thirds 1024x512
panoramas, one third 768x512 photos cut from them, each with its own sky and lights) and one
``ldr2hdr reconstruct FOLDER -o OUT`` (torch imported once): wall time, input megapixels per
second and peak memory.
Run on a quiet machine: the numbers are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STAGES = ("import", "decode", "curve", "dequantize", "linearize", "highlights", "energy", "encode")

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[3]))
from ldr2hdr.inference import crf, io, pipeline
from ldr2hdr.inference.crf.dequantize import dequantize, soft_saturation_mask
from ldr2hdr.inference.imaging import unit_float
t = {"import": time.perf_counter() - t0}
def lap(name, start):
    t[name] = time.perf_counter() - start
    return time.perf_counter()
s = time.perf_counter()
ldr = pipeline.check_ldr(unit_float(io.read_image(sys.argv[1], codes=True).pixels))  # as batch.process_one reads
s = lap("decode", s)
settings = pipeline.Settings()
inv = pipeline.estimate_crf(ldr, settings)
s = lap("curve", s)
deq = dequantize(ldr) if settings.dequantizes(*ldr.shape[:2]) else ldr
s = lap("dequantize", s)
linear = crf.linearize(deq, inv, out=deq if deq is not ldr else None)  # in place, as pipeline.linearize does
del deq
mask = soft_saturation_mask(ldr, settings.mask_threshold)
s = lap("linearize", s)
hdr = pipeline.restore_highlights(linear, ldr, mask, settings)
s = lap("highlights", s)
hdr, found = pipeline.restore_energy(hdr, linear, ldr, settings)
s = lap("energy", s)
io.write_exr(sys.argv[2], hdr)
lap("encode", s)
print("STAGES " + json.dumps(t))
"""


def make_input(width: int, path: Path, seed: int | None = None, crop: int | None = None) -> None:
    """A deterministic panorama JPEG: sky gradient, ground texture, a clipped sun and lamps
    (``seed`` moves them; ``crop``: keep only the first ``crop`` columns, a flat photo)."""
    from ldr2hdr.inference import io

    h, w = width // 2, width
    rng = np.random.default_rng(width if seed is None else [width, seed])
    shift = rng.uniform(-0.15, 0.15, 2) if seed is not None else np.zeros(2)
    out = np.empty((h, w, 3), np.float32)
    cols = np.arange(w, dtype=np.float32) / w
    for r0 in range(0, h, 512):  # in row bands, so a 16K input does not need 10 GB here
        r1 = min(h, r0 + 512)
        y = (np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5) / h
        sky = 0.35 + 0.4 * y + 0.05 * np.sin(6.283 * cols)[None, :]
        ground = 0.25 + 0.08 * rng.random((r1 - r0, w), dtype=np.float32)
        v = np.where(y < 0.5, sky, ground)
        band = np.stack([v * 0.85, v * 0.95, v * 1.05], -1)
        for cy, cx, rad in ((0.3, 0.6, 0.03), (0.55, 0.2, 0.006), (0.58, 0.35, 0.004), (0.62, 0.8, 0.005)):
            d2 = ((y - cy - 0.3 * shift[0]) * 2.0) ** 2 + (cols[None, :] - cx - shift[1]) ** 2
            band += (2.5 * np.exp(-d2 / (2 * rad * rad)))[..., None]
        out[r0:r1] = np.clip(band, 0.0, 1.0) ** (1 / 2.2)
    io.write_jpeg(path, out if crop is None else np.ascontiguousarray(out[:, :crop]), quality=90)


def _run_measured(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, the child's own peak RSS in GB (os.wait4), and its output."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here; tell Popen so it does not wait again
    if code:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({code}): {out.strip().splitlines()[-1:]}")
    return wall, usage.ru_maxrss / 1024 ** 2, out  # Linux: KiB -> GB


def bench_size(width: int, runs: int, threads: int, work: Path) -> dict:
    src = work / f"pano_{width}.jpg"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    py = sys.executable
    # The input is made in a child process: a child started by this one begins with this
    # process's resident memory (vfork), and the peak the kernel reports for it would include it.
    subprocess.run([py, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import bench_pipeline as b; "
                    "from pathlib import Path; b.make_input(int(sys.argv[2]), Path(sys.argv[3]))",
                    str(Path(__file__).resolve().parent), str(width), str(src)], check=True, env=env)
    cli = str(Path(py).with_name("ldr2hdr"))
    oiiotool = shutil.which("oiiotool", path=str(Path(py).parent)) or shutil.which("oiiotool")
    floor, e2e, rss, stages = [], [], [], []
    for i in range(runs):
        if oiiotool:
            floor.append(_run_measured([oiiotool, str(src), "-d", "half", "-o", str(work / "floor.exr")], env)[0])
        out = work / f"out_{width}_{i}"
        wall, peak, _ = _run_measured([cli, "reconstruct", str(src), "-o", str(out), "-q", "--overwrite"], env)
        e2e.append(wall)
        rss.append(peak)
        _, _, text = _run_measured([py, "-c", _CHILD, str(src), str(work / "stages.exr"), str(threads)], env)
        line = next(ln for ln in text.splitlines() if ln.startswith("STAGES "))
        stages.append(json.loads(line[len("STAGES "):]))
        shutil.rmtree(out, ignore_errors=True)
    med = {k: float(np.median([s[k] for s in stages])) for k in STAGES}
    row = {"width": width, "height": width // 2, "end_to_end_s": float(np.median(e2e)),
           "peak_gb": float(np.median(rss)), "stages_s": med,
           "io_floor_s": float(np.median(floor)) if floor else float("nan")}
    row["ratio_to_floor"] = row["end_to_end_s"] / row["io_floor_s"] if floor else float("nan")
    return row


def bench_batch(count: int, runs: int, threads: int, work: Path) -> dict:
    """One ``ldr2hdr reconstruct FOLDER`` over ``count`` held-out-style inputs."""
    folder = work / "batch"
    folder.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    py = sys.executable
    subprocess.run([py, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import bench_pipeline as b; "
                    "from pathlib import Path; n = int(sys.argv[2]); d = Path(sys.argv[3])\n"
                    "for i in range(n): b.make_input(1024, d / f'in_{i:03d}.jpg', seed=i, crop=768 if i % 3 == 2 else None)",
                    str(Path(__file__).resolve().parent), str(count), str(folder)], check=True, env=env)
    from ldr2hdr.inference import io

    mp = sum(w * h for w, h, _ in map(io.probe_image, folder.iterdir())) / 1e6
    cli = str(Path(py).with_name("ldr2hdr"))
    walls, rss = [], []
    for i in range(runs):
        out = work / f"batch_out_{i}"
        wall, peak, _ = _run_measured([cli, "reconstruct", str(folder), "-o", str(out), "-q", "--overwrite"], env)
        walls.append(wall)
        rss.append(peak)
        shutil.rmtree(out, ignore_errors=True)
    wall = float(np.median(walls))
    return {"inputs": count, "megapixels": mp, "wall_s": wall, "mp_per_s": mp / wall, "s_per_input": wall / count,
            "peak_gb": float(np.median(rss))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1024,4096,8192", help="panorama widths, comma-separated")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--batch", type=int, default=0, metavar="N",
                    help="instead: throughput of one reconstruct command over N held-out-style inputs")
    args = ap.parse_args(argv)
    if args.batch:
        with tempfile.TemporaryDirectory(prefix="ldr2hdr-bench-") as tmp:
            row = bench_batch(args.batch, args.runs, args.threads, Path(tmp))
        print("| inputs | megapixels | wall (s) | MP/s | s per input | peak |\n|---|---|---|---|---|---|")
        print(f"| {row['inputs']} | {row['megapixels']:.1f} | {row['wall_s']:.1f} | {row['mp_per_s']:.2f} | "
              f"{row['s_per_input']:.2f} | {row['peak_gb']:.2f} GB |")
        if args.json:
            Path(args.json).write_text(json.dumps(row, indent=2) + "\n")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="ldr2hdr-bench-") as tmp:
        for width in (int(s) for s in args.sizes.split(",")):
            rows.append(bench_size(width, args.runs, args.threads, Path(tmp)))
            print(f"{width}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    print("| panorama | end to end (s) | peak | IO floor (s) | x floor | " + " | ".join(STAGES) + " |")
    print("|---" * (5 + len(STAGES)) + "|")
    for r in rows:
        st = " | ".join(f"{r['stages_s'][k]:.2f}" for k in STAGES)
        print(f"| {r['width']}x{r['height']} | {r['end_to_end_s']:.1f} | {r['peak_gb']:.2f} GB | "
              f"{r['io_floor_s']:.2f} | {r['ratio_to_floor']:.1f} | {st} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
