"""Bad input files: every one must raise UnsupportedImageError with one line naming the file.

The files are built in tmp_path: truncated, bit-flipped, mislabelled, empty,
forged headers and non-finite floats.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from ldr2hdr.inference.errors import UnsupportedImageError
from ldr2hdr.inference.io import read_exr_metadata, read_image, write_exr, write_jpeg, write_png


def _refused(path: Path, match: str, **kwargs) -> UnsupportedImageError:
    """Assert read_image refuses ``path`` with a one-line message naming it."""
    with pytest.raises(UnsupportedImageError, match=match) as excinfo:
        read_image(path, **kwargs)
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message
    assert str(path) in message
    assert excinfo.value.path == str(path)
    return excinfo.value


def _noise(height: int = 64, width: int = 64) -> np.ndarray:
    return np.random.default_rng(5).random((height, width, 3)).astype(np.float32)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png_with_header(width: int, height: int, idat: bytes = b"") -> bytes:
    """An RGB 8-bit PNG whose IHDR declares width x height (valid CRCs)."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", idat or zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- not a file / empty


def test_missing_file(tmp_path):
    _refused(tmp_path / "missing.jpg", "no such file")


def test_directory_given_as_file(tmp_path):
    folder = tmp_path / "photo.jpg"
    folder.mkdir()
    _refused(folder, "is a folder")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".exr", ".hdr", ".tif", ".webp"])
def test_zero_byte_file(tmp_path, ext):
    path = tmp_path / f"empty{ext}"
    path.write_bytes(b"")
    _refused(path, "empty file")


@pytest.mark.parametrize("name", ["notes.txt", "image.bmp", "noextension"])
def test_unsupported_extension_refused_even_if_decodable(tmp_path, name):
    path = tmp_path / name
    write_png(tmp_path / "real.png", _noise(4, 4))
    path.write_bytes((tmp_path / "real.png").read_bytes())
    _refused(path, "unsupported file type")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".exr"])
def test_text_file_with_image_extension(tmp_path, ext):
    path = tmp_path / f"readme{ext}"
    path.write_text("This is not an image.\n" * 20)
    _refused(path, "not a readable image")


def test_png_named_jpg_is_read_by_content(tmp_path, caplog):
    real = tmp_path / "real.png"
    write_png(real, _noise(5, 6))
    mislabelled = tmp_path / "photo.jpg"
    mislabelled.write_bytes(real.read_bytes())
    loaded = read_image(mislabelled)
    assert loaded.format == "png"
    np.testing.assert_array_equal(loaded.pixels, read_image(real).pixels)
    assert "content is png" in caplog.text


# --------------------------------------------------------------------------- truncated / corrupt


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_jpeg(tmp_path, fraction):
    # libjpeg fills the missing rows and "succeeds"; the decoder warning must count.
    write_jpeg(tmp_path / "full.jpg", _noise())
    data = (tmp_path / "full.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    _refused(path, "corrupt or truncated file: JPEG error")


@pytest.mark.parametrize("marker", [b"\xff\xd3", b"\xff\xd9"])
def test_jpeg_with_stray_marker_in_scan(tmp_path, marker):
    # A stray restart/end marker mid-scan is what a spliced or damaged download
    # looks like. (Random bit flips in entropy data can decode "fine": JPEG has
    # no checksum, so those are not detectable and not tested.)
    write_jpeg(tmp_path / "full.jpg", _noise())
    data = (tmp_path / "full.jpg").read_bytes()
    middle = len(data) // 2
    path = tmp_path / "spliced.jpg"
    path.write_bytes(data[:middle] + marker + data[middle:])
    _refused(path, "corrupt or truncated file: JPEG error")


@pytest.mark.parametrize("ext", [".png", ".exr", ".hdr", ".tif"])
def test_truncated_files(tmp_path, ext):
    full = tmp_path / f"full{ext}"
    if ext == ".exr":
        write_exr(full, _noise() * 10)
    elif ext == ".png":
        write_png(full, _noise())
    else:
        assert oiio.ImageBuf(_noise()).write(str(full))
    data = full.read_bytes()
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "corrupt or truncated file|not a readable image")


def test_truncated_webp(tmp_path):
    full = tmp_path / "full.webp"
    assert oiio.ImageBuf((_noise() * 255).astype(np.uint8)).write(str(full))
    data = full.read_bytes()
    path = tmp_path / "cut.webp"
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "corrupt or truncated file|not a readable image")


@pytest.mark.parametrize(
    "ext, offset, match",
    [
        (".png", 1, "not a readable image"),  # PNG signature
        (".png", 19, "not a readable image"),  # inside IHDR width: CRC no longer matches
        (".jpg", 0, "not a readable image"),  # JPEG SOI marker
        (".exr", 0, "not a readable image"),  # OpenEXR magic number
    ],
)
def test_bit_flipped_header(tmp_path, ext, offset, match):
    full = tmp_path / f"full{ext}"
    {".png": write_png, ".jpg": write_jpeg}.get(ext, write_exr)(full, _noise(8, 8))
    data = bytearray(full.read_bytes())
    data[offset] ^= 0x10
    path = tmp_path / f"flipped{ext}"
    path.write_bytes(bytes(data))
    _refused(path, match)


# --------------------------------------------------------------------------- forged headers


def test_absurd_declared_dimensions_refused(tmp_path):
    # 100000 x 100000 already trips OpenImageIO's own memory limit at open().
    path = tmp_path / "forged.png"
    path.write_bytes(_png_with_header(100_000, 100_000))
    _refused(path, "100000 x 100000 = 10000000000 pixels, above the limit|exceeds the .* limit")


def test_large_declared_dimensions_refused_before_decoding(tmp_path):
    # 60000 x 30000 is under OpenImageIO's limit but above ours: only the header
    # check can refuse it, and it must do so without decoding 5 GB.
    path = tmp_path / "forged.png"
    path.write_bytes(_png_with_header(60_000, 30_000))
    assert path.stat().st_size < 100
    start = time.perf_counter()
    error = _refused(path, "60000 x 30000 = 1800000000 pixels, above the limit of 268435456 pixels")
    assert "--max-pixels" in str(error)
    assert time.perf_counter() - start < 1.0


def test_declared_size_checked_against_custom_limit(tmp_path):
    path = tmp_path / "forged.png"
    path.write_bytes(_png_with_header(300, 200))
    _refused(path, "300 x 200 = 60000 pixels, above the limit of 59999 pixels", max_pixels=59_999)


def test_declared_size_larger_than_data_is_corrupt(tmp_path):
    # Within the limit, but the pixel data is missing: must not come back as zeros.
    path = tmp_path / "short.png"
    path.write_bytes(_png_with_header(300, 200))
    _refused(path, "corrupt or truncated file")


def test_zero_width_declared(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(_png_with_header(0, 10))
    _refused(path, "not a readable image|no pixels")


# --------------------------------------------------------------------------- float content


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_exr_refused_with_count(tmp_path, bad_value):
    hdr = np.ones((4, 5, 3), np.float32)
    hdr[0, 0, 0] = bad_value
    hdr[3, 4, 2] = bad_value
    hdr[2, 2, 1] = bad_value
    path = tmp_path / "bad.exr"
    write_exr(path, hdr, half=False)
    _refused(path, "contains 3 non-finite values")


def test_non_finite_in_half_exr(tmp_path):
    hdr = np.ones((2, 2, 3), np.float32)
    hdr[1, 1] = np.nan
    path = tmp_path / "bad_half.exr"
    write_exr(path, hdr, half=True)
    _refused(path, "contains 3 non-finite values")


def test_metadata_of_bad_file(tmp_path):
    path = tmp_path / "text.exr"
    path.write_text("nope")
    with pytest.raises(UnsupportedImageError) as excinfo:
        read_exr_metadata(path)
    assert str(path) in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_absurd_channel_count_refused(tmp_path):
    path = tmp_path / "many.exr"
    buf = oiio.ImageBuf(np.zeros((2, 2, 65), np.float32))
    buf.specmod().channelnames = tuple(f"c{i:02d}" for i in range(65))
    assert buf.write(str(path)), buf.geterror()
    _refused(path, "declares 65 channels")
