"""What reading and writing share: supported files, size limits, input lists, quiet decoders.

Every problem with an input file is raised as :class:`~..errors.UnsupportedImageError`,
whose ``str()`` is one line naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

from ..errors import UnsupportedImageError

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".tif",
    ".tiff",
    ".webp",
    ".exr",
    ".hdr",
)

#: Two 16K x 8K panoramas' worth of pixels: large enough for any real photo,
#: small enough that a forged header cannot make us allocate hundreds of GB.

DEFAULT_MAX_PIXELS: int = 16384 * 8192 * 2
#: More channels than this is not a photo (and would multiply memory use).

MAX_CHANNELS = 64
#: Largest finite half-float value; brighter values would be written as inf.

METADATA_PREFIX = "ldr2hdr:"


def _first_line(message: str, fallback: str) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else fallback

def _check_file(path: Path) -> None:
    """Refuse what is clearly not an image file before OpenImageIO sees it."""
    if not path.exists():
        raise UnsupportedImageError("no such file", path)
    if path.is_dir():
        raise UnsupportedImageError("is a folder, not an image file", path)
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise UnsupportedImageError(
            f"unsupported file type '{path.suffix or '(none)'}' "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
            path,
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnsupportedImageError(f"cannot read file: {exc.strerror or exc}", path) from exc
    if size == 0:
        raise UnsupportedImageError("empty file (0 bytes)", path)
    if not os.access(path, os.R_OK):
        raise UnsupportedImageError("permission denied", path)

@contextlib.contextmanager
def _native_stderr_captured():
    """Capture what native decoders print straight to file descriptor 2.

    libpng and OpenEXR write their complaints to stderr themselves, which would put extra
    lines around our one-line error. The complaint also reaches us through OpenImageIO's
    error state, so the captured text is only logged at debug level. Set
    ``LDR2HDR_NATIVE_STDERR=1`` to let it through (for debugging decoders).
    """
    if os.environ.get("LDR2HDR_NATIVE_STDERR") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(4096).decode("utf-8", "replace").strip()
            if text:
                logger.debug("decoder said: %s", text)

def list_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand command-line inputs into image files.

    Files are kept as given (in order, even with an unsupported extension, so
    :func:`read_image` can report them). Folders are expanded non-recursively to
    their files with a supported extension (case-insensitive), sorted by name;
    hidden files (starting with ".", e.g. our own temporary files) are skipped.

    Raises:
        UnsupportedImageError: a path does not exist.
    """
    result: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                child
                for child in path.iterdir()
                if not child.name.startswith(".")
                and child.suffix.lower() in SUPPORTED_EXTENSIONS
                and child.is_file()
            )
            if not found:
                logger.warning("%s: folder has no supported images", path)
            result.extend(found)
        elif path.exists():
            result.append(path)
        else:
            raise UnsupportedImageError("no such file or folder", path)
    return result
