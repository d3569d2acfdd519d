"""Fuzz worker: mutate real image files and push each one through the tool's input path.

Run by tests/inference/test_fuzz.py in a subprocess, so a crash in a native decoder shows up as
a failed test with the seed to reproduce it instead of killing the test run:

    python tests/inference/fuzz_worker.py --seed 0 --cases 120 --workdir /tmp/fuzz --report r.json

Each case is a file made from a real image (a Blender studio-light HDR rendered to JPEG, PNG
8/16-bit, gray, RGBA, TIFF, WebP, EXR half/float, Radiance HDR) and then damaged: truncated,
bit-flipped, byte runs overwritten, chunks duplicated, header sizes forged, extension swapped,
emptied. The input path (``read_image`` then the classical pipeline on what decoded) must end in
a result or an :class:`Ldr2HdrError` with a one-line message naming the file: anything else
(another exception, a hang past the per-case alarm, memory beyond RLIMIT_AS) is a failure.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import struct
import sys
import time
import traceback
import zlib
from pathlib import Path

import numpy as np


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout


def make_corpus(folder: Path) -> list[Path]:
    """Valid seed files in several formats, from a real HDR (or a synthetic one without bpy)."""
    import OpenImageIO as oiio

    from ldr2hdr.inference import crf, io

    try:
        from ldr2hdr.inference.demo import resolve_hdr

        hdr = io.read_image(resolve_hdr("forest")).pixels[::8, ::8][:48, :96]
    except Exception:  # noqa: BLE001 - bpy missing: fall back to a synthetic gradient
        y, x = np.mgrid[0:48, 0:96].astype(np.float32)
        hdr = np.stack([x / 40, y / 30, (x + y) / 90], axis=-1) ** 2
    hdr = np.ascontiguousarray(hdr, dtype=np.float32)
    ldr = crf.apply_crf(hdr / np.quantile(hdr.max(axis=-1), 0.9), crf.srgb_inverse())
    folder.mkdir(parents=True, exist_ok=True)
    files = []

    def add(name, pixels, dtype, **attrs):
        path = folder / name
        buf = oiio.ImageBuf(np.ascontiguousarray(pixels))
        for k, v in attrs.items():
            buf.specmod().attribute(k, v)
        if not buf.write(str(path), dtype):
            raise RuntimeError(f"cannot write seed {name}: {buf.geterror()}")
        files.append(path)

    u8 = np.round(ldr * 255).astype(np.uint8)
    add("seed.jpg", u8, oiio.UINT8, compression="jpeg:90")
    add("seed.png", u8, oiio.UINT8)
    add("seed16.png", np.round(ldr * 65535).astype(np.uint16), oiio.UINT16)
    add("gray.png", u8[..., :1].copy(), oiio.UINT8)
    add("rgba.png", np.concatenate([u8, np.full(u8.shape[:2] + (1,), 200, np.uint8)], axis=-1), oiio.UINT8)
    add("seed.tif", u8, oiio.UINT8)
    add("float.tif", hdr, oiio.FLOAT)
    add("seed.webp", u8, oiio.UINT8)
    add("half.exr", hdr, oiio.HALF)
    add("float.exr", hdr, oiio.FLOAT, compression="piz")
    add("seed.hdr", hdr, oiio.FLOAT)
    io.write_exr(folder / "neg.exr", hdr - 0.05)
    files.append(folder / "neg.exr")
    return files


def _png_forge_size(data: bytes, rng: random.Random) -> bytes:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 33:
        return data
    w = rng.choice([0, 1, 65535, 2 ** 31 - 1, rng.randrange(1, 1 << 20)])
    h = rng.choice([0, 1, 65535, 2 ** 31 - 1, rng.randrange(1, 1 << 20)])
    ihdr = struct.pack(">II", w, h) + data[24:29]
    return data[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF) + data[33:]


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["truncate", "bitflip", "overwrite", "duplicate", "forge", "header", "empty", "tail"])
    b = bytearray(data)
    if kind == "truncate":
        return bytes(b[: rng.randrange(0, len(b))]), kind
    if kind == "bitflip":
        for _ in range(rng.randint(1, 24)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b), kind
    if kind == "overwrite":
        i = rng.randrange(len(b))
        n = rng.randint(1, 64)
        b[i:i + n] = bytes(rng.randrange(256) for _ in range(n))
        return bytes(b), kind
    if kind == "duplicate":
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        return bytes(b[:j] + b[i:j] + b[j:]), kind
    if kind == "forge":
        return _png_forge_size(bytes(b), rng), kind
    if kind == "header":
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(min(64, len(b)))
            b[i] = rng.randrange(256)
        return bytes(b), kind
    if kind == "tail":
        return bytes(b) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096))), kind
    return b"", kind


def run_case(path: Path) -> str:
    """``ok``/``refused``; raises anything else."""
    from ldr2hdr.inference import io, pipeline
    from ldr2hdr.inference.errors import Ldr2HdrError

    try:
        img = io.read_image(path)
        if not img.is_hdr:
            pipeline.run(img.pixels, pipeline.Settings(method="classical"))
        return "ok"
    except Ldr2HdrError as exc:
        msg = str(exc)
        if "\n" in msg or str(path) not in msg:
            raise AssertionError(f"error message is not one line naming the file: {msg!r}") from None
        return "refused"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=120)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--report", type=Path, required=True)
    ap.add_argument("--memory-gb", type=float, default=8.0)
    ap.add_argument("--case-seconds", type=int, default=20)
    args = ap.parse_args(argv)

    limit = int(args.memory_gb * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    seeds = make_corpus(args.workdir / "seeds")
    rng = random.Random(args.seed)
    rows, failures = [], 0
    exts = [p.suffix for p in seeds]
    for i in range(args.cases):
        src = rng.choice(seeds)
        data, kind = mutate(src.read_bytes(), rng)
        ext = rng.choice(exts) if rng.random() < 0.15 else src.suffix  # sometimes the wrong extension
        case = args.workdir / f"case{i:04d}{ext}"
        case.write_bytes(data)
        t0 = time.monotonic()
        signal.alarm(args.case_seconds)
        try:
            status, detail = run_case(case), ""
        except CaseTimeout:
            status, detail = "hang", f"no result within {args.case_seconds} s"
        except MemoryError:
            status, detail = "memory", "MemoryError under RLIMIT_AS"
        except BaseException as exc:  # noqa: BLE001 - the point is to catch anything
            status, detail = "crash", "".join(traceback.format_exception_only(type(exc), exc)).strip()
        finally:
            signal.alarm(0)
        failures += status not in ("ok", "refused")
        rows.append({"case": case.name, "source": src.name, "mutation": kind, "status": status,
                     "detail": detail, "seconds": round(time.monotonic() - t0, 3)})
        case.unlink()
    args.report.write_text(json.dumps({"seed": args.seed, "failures": failures, "cases": rows}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
