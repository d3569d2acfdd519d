"""Benchmark the per-pixel stages: eager PyTorch reference vs torch.compile vs the Triton kernels.

Not a test: it measures, it does not judge. For each image size and stage it prints the
median time of ``--runs`` runs, megapixels per second, the effective memory traffic (the
minimum bytes the stage must read and write, divided by the time) and the peak memory the
stage adds on top of its inputs, as a markdown table headed by the machine it ran on.

Stages (the network that sits between them is not included):
  linearize         LDR (B,3,H,W) -> linear, log(linear + eps), soft saturation mask
  blend             linear, network log output, mask, exposure -> HDR
  linearize+blend   both, back to back (the intermediates go through memory, as in the pipeline)

Implementations: ``eager`` (the float32 torch references), ``compile`` (torch.compile of the
references; skipped with a note when it fails or with --no-compile) and ``triton`` (the
fused kernels; CUDA only - on a CPU they would run in Triton's interpreter, which is a
correctness tool, not a fast path).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` above what was allocated before
the call; on the CPU the process's resident-set high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs``) above its resident size before the call, with glibc told to
return every large block to the system when freed so that reuse does not hide allocations.

Usage:
    .venv/bin/python training/bench_kernels.py                       # all sizes, auto device
    .venv/bin/python training/bench_kernels.py --device cpu --runs 3 --threads 2
    .venv/bin/python training/bench_kernels.py --sizes 1024x512 --no-compile
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from ldr2hdr.inference import crf, kernels

logger = logging.getLogger("bench_kernels")

SIZES = ("1024x512", "4096x2048", "8192x4096")
STAGES = ("linearize", "blend", "linearize+blend")


# --------------------------------------------------------------------------- machine


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_lines(device: torch.device, threads: int) -> list[str]:
    lines = [f"- CPU: {cpu_name()}, {os.cpu_count()} logical cores visible, torch threads {threads}"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.append(f"- GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}")
    else:
        lines.append("- GPU: none used")
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    lines.append(f"- torch {torch.__version__}, triton {triton_version}, python {platform.python_version()}")
    return lines


# --------------------------------------------------------------------------- memory


def _return_large_blocks_to_the_os() -> None:
    # A fixed mmap threshold (M_MMAP_THRESHOLD = -3) makes every block >= 64 KiB its own
    # mapping, unmapped when freed, so the RSS high-water mark sees each stage's allocations.
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024)
    except (OSError, AttributeError):
        logger.info("not glibc: CPU peak memory may under-count reused blocks")


def _proc_status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory_mb(fn, device: torch.device) -> float | None:
    """Extra memory in MiB that one call of ``fn`` needs above what is allocated before it."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del out
        return peak / 2**20
    rss = _proc_status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        return None
    out = fn()
    hwm = _proc_status_kb("VmHWM")
    del out
    if rss is None or hwm is None:
        return None
    return max(hwm - rss, 0) / 1024


# --------------------------------------------------------------------------- timing


def median_seconds(fn, runs: int, device: torch.device) -> float:
    times = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        del out
    return statistics.median(times)


def make_inputs(width: int, height: int, device: torch.device, seed: int = 0) -> dict:
    """A synthetic LDR image with a clipped region, a network output and the sRGB curves."""
    g = torch.Generator().manual_seed(seed)
    ldr = torch.rand(1, 3, height, width, generator=g)
    ldr[:, :, : height // 8, : width // 8] = 1.0  # a blown-out sun so the mask is not all zero
    curves = torch.from_numpy(crf.srgb_inverse().per_channel())
    ldr, curves = ldr.to(device), curves.to(device)
    linear, log_linear, mask = kernels.linearize_reference(ldr, curves)
    y = log_linear + 0.5 * torch.randn(log_linear.shape, generator=g).to(device)
    return {"ldr": ldr, "curves": curves, "linear": linear, "y": y, "mask": mask}


def stage_bytes(stage: str, pixels: int) -> int:
    # Minimum traffic: float32 everywhere; linearize reads 3 and writes 3 + 3 + 1 values,
    # blend reads 3 + 3 + 1 and writes 3.
    per_pixel = {"linearize": (3 + 7) * 4, "blend": (7 + 3) * 4}
    per_pixel["linearize+blend"] = per_pixel["linearize"] + per_pixel["blend"]
    return per_pixel[stage] * pixels


def stage_functions(impl: str, data: dict, compiled: dict | None):
    """``{stage: zero-argument callable}`` for one implementation."""
    ldr, curves, linear, y, mask = (data[k] for k in ("ldr", "curves", "linear", "y", "mask"))
    scale = 2.0
    if impl == "triton":
        def lin():
            return kernels.linearize(ldr, curves, backend="triton")

        def bl(a=linear, b=y, m=mask):
            return kernels.blend(a, b, m, scale, backend="triton")
    else:
        lin_fn = compiled["linearize"] if impl == "compile" else kernels.linearize_reference
        blend_fn = compiled["blend"] if impl == "compile" else kernels.blend_reference

        def lin():
            return lin_fn(ldr, curves, kernels.DEFAULT_THRESHOLD, kernels.LOG_EPS)

        def bl(a=linear, b=y, m=mask):
            return blend_fn(a, b, m, scale, kernels.Y_MAX)

    def both():
        a, log_a, m = lin()
        # log_a stands in for the network output: the network itself is not benchmarked here.
        return bl(a, log_a, m)

    return {"linearize": lin, "blend": bl, "linearize+blend": both}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated WxH (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per cell; the median is reported")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1), help="torch CPU threads")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    torch.set_num_threads(args.threads)
    _return_large_blocks_to_the_os()
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")

    impls = ["eager"]
    if not args.no_compile:
        impls.append("compile")
    notes = []
    if device.type == "cuda":
        reason = kernels.triton_unavailable_reason(device)
        if reason is None:
            impls.append("triton")
        else:
            notes.append(f"triton skipped: {reason}")
    else:
        notes.append("triton not timed: no CUDA GPU (on a CPU the kernels only run in the interpreter)")

    compiled = None
    if "compile" in impls:
        compiled = {"linearize": torch.compile(kernels.linearize_reference, dynamic=False),
                    "blend": torch.compile(kernels.blend_reference, dynamic=False)}

    rows = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        data = make_inputs(width, height, device)
        pixels = width * height
        for impl in list(impls):
            funcs = stage_functions(impl, data, compiled)
            for stage in STAGES:
                fn = funcs[stage]
                start = time.perf_counter()
                try:
                    fn()  # warm-up: compilation, autotuning, first-touch allocations
                except Exception as exc:  # noqa: BLE001 - any compile failure means "not available here"
                    if impl != "compile":
                        raise
                    notes.append(f"torch.compile skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                    impls.remove("compile")
                    break
                warm = time.perf_counter() - start
                if impl == "compile" and warm > 5:
                    notes.append(f"torch.compile warm-up for {stage} at {size}: {warm:.0f} s")
                seconds = median_seconds(fn, args.runs, device)
                peak = peak_memory_mb(fn, device)
                rows.append((size, stage, impl, seconds, pixels, stage_bytes(stage, pixels), peak))
                logger.info("%s %s %s: %.1f ms", size, stage, impl, seconds * 1e3)
        del data
        gc.collect()

    print(f"### Kernel benchmark ({device.type}, median of {args.runs} runs)\n")
    print("\n".join(machine_lines(device, args.threads)))
    print()
    print("| size | stage | implementation | median ms | MP/s | effective GB/s | peak MiB (outputs + temporaries) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for size, stage, impl, seconds, pixels, nbytes, peak in rows:
        peak_text = "n/a" if peak is None else f"{peak:.0f}"
        print(f"| {size} | {stage} | {impl} | {seconds * 1e3:.1f} | {pixels / seconds / 1e6:.1f} | "
              f"{nbytes / seconds / 1e9:.2f} | {peak_text} |")
    if notes:
        print()
        print("\n".join(f"- {note}" for note in notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
