"""Trusted weights: safetensors only, sha256 checked against ``weights/manifest.json``.

A pickle can run code when it is loaded, so nothing here ever unpickles. Every file is
verified against the manifest before its bytes are parsed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from .errors import WeightsError

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(manifest: str | Path = MANIFEST) -> dict:
    """The manifest: ``{"files": {name: {"sha256": ..., "size": ..., ...}}}``."""
    manifest = Path(manifest)
    if not manifest.is_file():
        return {"files": {}}
    try:
        return json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"weights manifest is unreadable: {exc}", manifest) from None


def verify_weights_file(path: str | Path, manifest: str | Path | None = None) -> dict:
    """Check that ``path`` is a safetensors file whose sha256 matches its manifest entry.

    Returns the manifest entry. Raises :class:`WeightsError` for a missing entry, a hash
    mismatch, or a file that is not safetensors (e.g. a pickle).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError("weights file not found", path)
    with open(path, "rb") as f:
        head = f.read(8)
    if path.suffix != ".safetensors" or head[:2] in _PICKLE_MAGIC or head[:4] in _PICKLE_MAGIC:
        raise WeightsError("refused: only .safetensors weights are loaded (pickles can run code)", path)
    entries = load_manifest(manifest or path.parent / "manifest.json").get("files", {})
    entry = entries.get(path.name)
    if entry is None:
        raise WeightsError("refused: file is not listed in weights/manifest.json", path)
    digest = sha256_of(path)
    if digest != entry.get("sha256"):
        raise WeightsError(f"refused: sha256 {digest[:12]}... does not match the manifest "
                           f"({str(entry.get('sha256'))[:12]}...); the file was changed or corrupted", path)
    return entry


def record_weights_file(path: str | Path, **info) -> dict:
    """Add or update the manifest entry for ``path`` (used by training scripts)."""
    path = Path(path)
    manifest_path = path.parent / "manifest.json"
    manifest = load_manifest(manifest_path)
    entry = {"sha256": sha256_of(path), "size": path.stat().st_size, **info}
    manifest.setdefault("files", {})[path.name] = entry
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(manifest_path)
    return entry
