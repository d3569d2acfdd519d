"""Tests for inference/image_io.py: reading, writing, metadata, orientation, inputs.

All files are made in tmp_path (with OpenImageIO, or byte by byte where it
cannot write the variant); the only external data are bpy's studio lights.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from ldr2hdr.inference import image_io
from ldr2hdr.inference.errors import Ldr2HdrError, OutputExistsError, UnsupportedImageError
from ldr2hdr.inference.image_io import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    ExifInfo,
    LoadedImage,
    apply_orientation,
    list_inputs,
    read_exr_metadata,
    read_image,
    write_exr,
    write_jpeg,
    write_png,
)


def _write_with_oiio(path: Path, array: np.ndarray, attributes: dict | None = None, channelnames=None) -> Path:
    buf = oiio.ImageBuf(np.ascontiguousarray(array))
    spec = buf.specmod()
    # Our arrays hold straight (unassociated) alpha; without this OIIO would
    # divide colour by alpha when writing PNG/TIFF.
    spec.attribute("oiio:UnassociatedAlpha", 1)
    if channelnames is not None:
        spec.channelnames = tuple(channelnames)
    for name, value in (attributes or {}).items():
        spec.attribute(name, value)
    assert buf.write(str(path)), buf.geterror()
    return path


def _hdr_test_image(height: int = 16, width: int = 24) -> np.ndarray:
    """Smooth positive image spanning 1e-4 .. 5e4 (below and far above 1)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.exp(np.log(1e-4) + (np.log(5e4) - np.log(1e-4)) * (x + y * width) / (height * width - 1))
    return np.stack([base, base * 0.5, base * 0.25], axis=-1).astype(np.float32)


def _files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# --------------------------------------------------------------------------- constants


def test_interface_constants():
    assert SUPPORTED_EXTENSIONS == (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".exr", ".hdr")
    assert DEFAULT_MAX_PIXELS == 16384 * 8192 * 2
    assert ExifInfo(None, None, None).orientation == 1


# --------------------------------------------------------------------------- EXR


def test_exr_half_round_trip_keeps_bright_and_tiny_values(tmp_out):
    hdr = _hdr_test_image()
    path = tmp_out / "h.exr"
    write_exr(path, hdr)
    loaded = read_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.format == "openexr" and loaded.is_hdr and loaded.bits == 16
    assert loaded.pixels.dtype == np.float32 and loaded.pixels.shape == hdr.shape
    assert loaded.alpha is None
    # half has 11 significant bits; tiny values sit in the subnormal range
    np.testing.assert_allclose(loaded.pixels, hdr, rtol=1e-3, atol=1e-7)
    assert loaded.pixels.max() > 1e4  # never clamped


def test_exr_float_round_trip_is_exact(tmp_out):
    hdr = _hdr_test_image()
    hdr[0, 0] = [1e-30, 1e6, 123456.789]
    path = tmp_out / "f.exr"
    write_exr(path, hdr, half=False)
    loaded = read_image(path)
    assert loaded.bits == 32
    np.testing.assert_array_equal(loaded.pixels, hdr)


def test_exr_half_switches_to_float_above_half_max(tmp_out, caplog):
    hdr = np.full((2, 3, 3), 2.0, np.float32)
    hdr[1, 2] = [1e5, 7e4, 65504.0]
    path = tmp_out / "bright.exr"
    with caplog.at_level(logging.WARNING, logger="ldr2hdr.inference.image_io"):
        write_exr(path, hdr, half=True)
    loaded = read_image(path)
    assert np.isfinite(loaded.pixels).all()
    np.testing.assert_array_equal(loaded.pixels, hdr)
    assert loaded.bits == 32
    assert "half" in caplog.text


@pytest.mark.parametrize(
    "compression, rtol",
    [("none", 1e-3), ("zip", 1e-3), ("piz", 1e-3), ("rle", 1e-3), ("pxr24", 1e-3), ("b44", 0.05), ("dwaa", 0.05)],
)
def test_exr_compressions(tmp_out, compression, rtol):
    hdr = _hdr_test_image(32, 32)
    path = tmp_out / f"{compression}.exr"
    write_exr(path, hdr, compression=compression)
    inp = oiio.ImageInput.open(str(path))
    stored = inp.spec().get_string_attribute("compression")
    inp.close()
    assert stored == compression
    np.testing.assert_allclose(read_image(path).pixels, hdr, rtol=rtol, atol=1e-4)


def test_exr_compression_with_level(tmp_out):
    write_exr(tmp_out / "d.exr", _hdr_test_image(), compression="dwaa:45")
    inp = oiio.ImageInput.open(str(tmp_out / "d.exr"))
    assert inp.spec().get_string_attribute("compression") == "dwaa"
    inp.close()


@pytest.mark.parametrize("compression", ["lzma", "zip:fast", "", "dwaa:-1"])
def test_exr_unknown_compression_refused(tmp_out, compression):
    with pytest.raises(ValueError, match="compression"):
        write_exr(tmp_out / "x.exr", _hdr_test_image(), compression=compression)
    assert _files_in(tmp_out) == []


def test_exr_with_alpha_round_trip(tmp_out):
    rgba = np.concatenate([_hdr_test_image(4, 5), np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5, 1)], -1)
    write_exr(tmp_out / "a.exr", rgba, half=False)
    loaded = read_image(tmp_out / "a.exr")
    np.testing.assert_array_equal(loaded.pixels, rgba[..., :3])
    np.testing.assert_array_equal(loaded.alpha, rgba[..., 3])


def test_exr_metadata_round_trip(tmp_out):
    metadata = {
        "method": "classical",
        "exposure": -1.5,
        "tile_size": 512,
        "panorama": True,
        "inverse_crf": [0.0, 0.25, 1.0],
        "count": np.int64(7),
        "huge": 2**40,
        "custom:key": "kept as is",
    }
    path = tmp_out / "m.exr"
    write_exr(path, _hdr_test_image(), metadata=metadata)
    got = read_exr_metadata(path)
    assert got["method"] == "classical"
    assert got["exposure"] == pytest.approx(-1.5)
    assert got["tile_size"] == 512 and isinstance(got["tile_size"], int)
    assert got["panorama"] == 1
    assert got["inverse_crf"] == "[0.0, 0.25, 1.0]"
    assert got["count"] == 7
    assert got["huge"] == str(2**40)
    assert "custom:key" not in got  # not an ldr2hdr:* attribute
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    assert spec.get_string_attribute("custom:key") == "kept as is"
    assert spec.get_string_attribute("Software").startswith("ldr2hdr")
    inp.close()


def test_exr_metadata_unstorable_value_refused(tmp_out):
    with pytest.raises(ValueError, match="metadata"):
        write_exr(tmp_out / "m.exr", _hdr_test_image(), metadata={"bad": object()})
    assert _files_in(tmp_out) == []


def test_studio_light_reads_as_hdr(studio_light):
    loaded = read_image(studio_light("forest"))
    assert loaded.pixels.shape == (512, 1024, 3)
    assert loaded.is_hdr and loaded.format == "openexr"
    assert loaded.pixels.max() > 1.0
    assert loaded.pixels.min() >= 0.0


def test_negative_float_values_set_to_zero_and_logged(tmp_path, caplog):
    hdr = np.ones((3, 4, 3), np.float32)
    hdr[0, 0, 0] = -2.0
    hdr[2, 3, 1] = -0.5
    write_exr(tmp_path / "neg.exr", hdr, half=False)
    with caplog.at_level(logging.INFO, logger="ldr2hdr.inference.image_io"):
        loaded = read_image(tmp_path / "neg.exr")
    assert loaded.pixels[0, 0, 0] == 0.0 and loaded.pixels[2, 3, 1] == 0.0
    assert loaded.pixels[1, 1, 1] == 1.0
    assert "2 negative values" in caplog.text


# --------------------------------------------------------------------------- PNG / JPEG


def test_png_8bit_round_trip_exact(tmp_out):
    codes = np.arange(5 * 7 * 3).reshape(5, 7, 3) * 2
    pixels = (codes / 255.0).astype(np.float32)
    write_png(tmp_out / "p.png", pixels)
    loaded = read_image(tmp_out / "p.png")
    assert loaded.bits == 8 and not loaded.is_hdr and loaded.format == "png"
    np.testing.assert_array_equal(np.rint(loaded.pixels * 255), codes)


def test_png_16bit_round_trip_exact(tmp_out):
    codes = np.arange(4 * 6 * 3).reshape(4, 6, 3) * 911
    pixels = (codes / 65535.0).astype(np.float32)
    write_png(tmp_out / "p16.png", pixels, bits=16)
    loaded = read_image(tmp_out / "p16.png")
    assert loaded.bits == 16
    np.testing.assert_array_equal(np.rint(loaded.pixels.astype(np.float64) * 65535), codes)


def test_png_clips_rounds_and_zeroes_nan(tmp_out):
    pixels = np.array([[[-0.5, 1.5, np.nan], [100.4 / 255, 100.6 / 255, 1.0]]], np.float32)
    write_png(tmp_out / "c.png", pixels)
    codes = np.rint(read_image(tmp_out / "c.png").pixels * 255)
    np.testing.assert_array_equal(codes, [[[0, 255, 0], [100, 101, 255]]])


def test_png_rgba_round_trip_keeps_straight_alpha(tmp_out):
    rgba = np.zeros((2, 3, 4), np.float32)
    rgba[..., :3] = 200 / 255
    rgba[..., 3] = np.array([[0, 50, 100], [150, 200, 255]]) / 255
    write_png(tmp_out / "a.png", rgba)
    loaded = read_image(tmp_out / "a.png")
    np.testing.assert_array_equal(np.rint(loaded.pixels * 255), 200)
    np.testing.assert_array_equal(np.rint(loaded.alpha * 255), np.rint(rgba[..., 3] * 255))


def test_png_bits_validated(tmp_out):
    with pytest.raises(ValueError, match="8 or 16"):
        write_png(tmp_out / "x.png", np.zeros((2, 2, 3)), bits=12)


def test_jpeg_round_trip_is_close(tmp_out):
    y, x = np.mgrid[0:48, 0:64]
    pixels = np.stack([x / 63, y / 47, (x + y) / 110], -1).astype(np.float32)
    write_jpeg(tmp_out / "j.jpg", pixels, quality=95)
    loaded = read_image(tmp_out / "j.jpg")
    assert loaded.format == "jpeg" and loaded.bits == 8
    assert np.abs(loaded.pixels - pixels).mean() < 0.01


def test_jpeg_quality_changes_size(tmp_out):
    pixels = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    write_jpeg(tmp_out / "lo.jpg", pixels, quality=10)
    write_jpeg(tmp_out / "hi.jpg", pixels, quality=100)
    assert (tmp_out / "lo.jpg").stat().st_size * 2 < (tmp_out / "hi.jpg").stat().st_size
    with pytest.raises(ValueError, match="quality"):
        write_jpeg(tmp_out / "bad.jpg", pixels, quality=0)


# --------------------------------------------------------------------------- atomic writes


WRITERS = {
    "exr": lambda path, **kw: write_exr(path, np.full((4, 4, 3), 3.0, np.float32), **kw),
    "png": lambda path, **kw: write_png(path, np.full((4, 4, 3), 0.5, np.float32), **kw),
    "jpg": lambda path, **kw: write_jpeg(path, np.full((4, 4, 3), 0.5, np.float32), **kw),
}


@pytest.mark.parametrize("ext", sorted(WRITERS))
def test_write_leaves_no_temporary_files(tmp_out, ext):
    WRITERS[ext](tmp_out / f"out.{ext}")
    WRITERS[ext](tmp_out / f"out.{ext}")  # overwrite=True by default
    assert _files_in(tmp_out) == [f"out.{ext}"]


@pytest.mark.parametrize("ext", sorted(WRITERS))
def test_overwrite_false_refuses_and_keeps_file(tmp_out, ext):
    target = tmp_out / f"out.{ext}"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExistsError) as excinfo:
        WRITERS[ext](target, overwrite=False)
    assert str(target) in str(excinfo.value)
    assert target.read_bytes() == b"precious"
    assert _files_in(tmp_out) == [f"out.{ext}"]


def test_overwrite_false_writes_new_file(tmp_out):
    WRITERS["exr"](tmp_out / "new.exr", overwrite=False)
    assert read_image(tmp_out / "new.exr").pixels[0, 0, 0] == 3.0
    assert _files_in(tmp_out) == ["new.exr"]


def test_overwrite_false_loses_race_cleanly(tmp_out, monkeypatch):
    """The destination appears while the temporary file is written."""
    target = tmp_out / "race.exr"
    real_write = oiio.ImageBuf.write

    def write_then_competitor(self, *args, **kwargs):
        ok = real_write(self, *args, **kwargs)
        target.write_bytes(b"competitor")
        return ok

    monkeypatch.setattr(oiio.ImageBuf, "write", write_then_competitor)
    with pytest.raises(OutputExistsError):
        WRITERS["exr"](target, overwrite=False)
    assert target.read_bytes() == b"competitor"
    assert _files_in(tmp_out) == ["race.exr"]


@pytest.mark.parametrize("ext", sorted(WRITERS))
def test_failed_write_keeps_existing_file_and_no_partial(tmp_out, monkeypatch, ext):
    target = tmp_out / f"out.{ext}"
    target.write_bytes(b"old")

    def partial_write(self, filename, *args, **kwargs):
        Path(filename).write_bytes(b"half a file")  # the writer died midway
        return False

    monkeypatch.setattr(oiio.ImageBuf, "write", partial_write)
    with pytest.raises(Ldr2HdrError) as excinfo:
        WRITERS[ext](target)
    assert "\n" not in str(excinfo.value) and str(target) in str(excinfo.value)
    assert target.read_bytes() == b"old"
    assert _files_in(tmp_out) == [f"out.{ext}"]


def test_failed_rename_removes_temporary(tmp_out, monkeypatch):
    target = tmp_out / "out.exr"

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(image_io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        WRITERS["exr"](target)
    assert _files_in(tmp_out) == []


@pytest.mark.parametrize(
    "writer, bad",
    [
        (write_exr, np.zeros((4, 4), np.float32)),
        (write_exr, np.zeros((4, 4, 2), np.float32)),
        (write_exr, np.zeros((0, 4, 3), np.float32)),
        (write_png, np.zeros((4, 4, 5), np.float32)),
        (write_jpeg, np.zeros((4, 4, 4), np.float32)),
        (write_png, np.array([["a"]])),
    ],
)
def test_wrong_shape_refused_without_touching_files(tmp_out, writer, bad):
    suffix = {write_exr: ".exr", write_png: ".png", write_jpeg: ".jpg"}[writer]
    target = tmp_out / f"out{suffix}"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match=r"shape|dtype") as excinfo:
        writer(target, bad)
    assert str(bad.shape) in str(excinfo.value) or str(bad.dtype) in str(excinfo.value)
    assert target.read_bytes() == b"old"
    assert _files_in(tmp_out) == [target.name]


def test_write_into_missing_folder_or_onto_folder(tmp_out):
    with pytest.raises(Ldr2HdrError, match="folder does not exist"):
        WRITERS["exr"](tmp_out / "missing" / "x.exr")
    (tmp_out / "dir.exr").mkdir()
    with pytest.raises(Ldr2HdrError, match="is a folder"):
        WRITERS["exr"](tmp_out / "dir.exr")
    assert _files_in(tmp_out) == ["dir.exr"]


# --------------------------------------------------------------------------- channel layouts


def test_gray_png_replicated_to_rgb(tmp_path):
    gray = (np.arange(12 * 10).reshape(12, 10, 1) * 2).astype(np.uint8)
    loaded = read_image(_write_with_oiio(tmp_path / "g.png", gray))
    assert loaded.pixels.shape == (12, 10, 3) and loaded.alpha is None
    for c in range(3):
        np.testing.assert_array_equal(np.rint(loaded.pixels[..., c] * 255), gray[..., 0])


def test_gray_alpha_png(tmp_path):
    gray = np.full((3, 4), 200, np.uint8)
    alpha = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    loaded = read_image(_write_with_oiio(tmp_path / "ga.png", np.stack([gray, alpha], -1)))
    assert loaded.pixels.shape == (3, 4, 3)
    # colour must not be premultiplied by alpha
    np.testing.assert_array_equal(np.rint(loaded.pixels * 255), 200)
    np.testing.assert_array_equal(np.rint(loaded.alpha * 255), alpha)
    assert loaded.alpha.dtype == np.float32


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif"])
def test_rgba_alpha_kept_aside_and_colour_not_premultiplied(tmp_path, ext):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 200, 100, 50, 100
    attributes = {"compression": "lossless"} if ext == ".webp" else {}
    _write_with_oiio(tmp_path / f"a{ext}", rgba, attributes)
    loaded = read_image(tmp_path / f"a{ext}")
    assert loaded.pixels.shape == (8, 8, 3) and loaded.alpha.shape == (8, 8)
    np.testing.assert_allclose(loaded.alpha, 100 / 255, atol=1 / 255)
    np.testing.assert_allclose(
        loaded.pixels, np.broadcast_to([200 / 255, 100 / 255, 50 / 255], (8, 8, 3)), atol=1.5 / 255
    )


@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_16bit_integer_scaled_by_65535(tmp_path, ext):
    codes = np.array([[[0, 1, 65535], [32768, 1000, 65534]]], np.uint16)
    loaded = read_image(_write_with_oiio(tmp_path / f"a{ext}", codes))
    assert loaded.bits == 16 and not loaded.is_hdr
    np.testing.assert_array_equal(np.rint(loaded.pixels.astype(np.float64) * 65535), codes)


def test_float_tiff_is_hdr(tmp_path):
    hdr = _hdr_test_image(5, 6)
    loaded = read_image(_write_with_oiio(tmp_path / "f.tif", hdr))
    assert loaded.is_hdr and loaded.bits == 32 and loaded.format == "tiff"
    np.testing.assert_array_equal(loaded.pixels, hdr)


def test_radiance_hdr_read(tmp_path):
    hdr = _hdr_test_image(5, 6)
    loaded = read_image(_write_with_oiio(tmp_path / "f.HDR", hdr))
    assert loaded.is_hdr and loaded.format == "hdr"
    # RGBE shares one exponent per pixel: error is relative to the brightest channel
    error = np.abs(loaded.pixels - hdr) / hdr.max(axis=-1, keepdims=True)
    assert error.max() < 1 / 128


def test_more_than_four_channels_picks_rgb_by_name(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.random((6, 7, 6)).astype(np.float32)
    names = ["Z", "B", "G", "R", "depth", "A"]
    loaded = read_image(_write_with_oiio(tmp_path / "multi.exr", data, channelnames=names))
    np.testing.assert_allclose(loaded.pixels, data[..., [3, 2, 1]], rtol=1e-3)
    np.testing.assert_allclose(loaded.alpha, data[..., 5], rtol=1e-3)


def test_multiview_channels_use_first_layer(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.random((4, 5, 6)).astype(np.float32)
    names = ["left.R", "left.G", "left.B", "right.R", "right.G", "right.B"]
    loaded = read_image(_write_with_oiio(tmp_path / "views.exr", data, channelnames=names))
    np.testing.assert_allclose(loaded.pixels, data[..., :3], rtol=1e-3)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def test_palette_png_comes_out_rgb(tmp_path):
    palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30]], np.uint8)
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in indices)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 3, 0, 0, 0))
        + _png_chunk(b"PLTE", palette.tobytes())
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )
    (tmp_path / "pal.png").write_bytes(png)
    loaded = read_image(tmp_path / "pal.png")
    assert loaded.pixels.shape == (2, 3, 3)
    np.testing.assert_array_equal(np.rint(loaded.pixels * 255), palette[indices])


def _flat_block_jpeg(blocks: np.ndarray, adobe_transform: int) -> bytes:
    """A baseline JPEG whose every 8x8 block is flat (DC only).

    Args:
        blocks: uint8 (BH, BW, C) stored component values, one per block.
        adobe_transform: Adobe APP14 transform flag (0 = CMYK/RGB as stored).
    """

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    bh, bw, nc = blocks.shape
    out = b"\xff\xd8" + segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, adobe_transform))
    out += segment(0xDB, b"\x00" + bytes([1] * 64))
    out += segment(0xC0, struct.pack(">BHHB", 8, bh * 8, bw * 8, nc) + b"".join(struct.pack(">BBB", i + 1, 0x11, 0) for i in range(nc)))
    out += segment(0xC4, b"\x00" + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12)))  # DC: 12 4-bit codes
    out += segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")  # AC: only end-of-block
    out += segment(0xDA, bytes([nc]) + b"".join(bytes([i + 1, 0]) for i in range(nc)) + b"\x00\x3f\x00")
    bits: list[str] = []
    previous = [0] * nc
    for y in range(bh):
        for x in range(bw):
            for c in range(nc):
                dc = 8 * (int(blocks[y, x, c]) - 128)  # DC of a flat block with unit quantization
                diff, previous[c] = dc - previous[c], dc
                size = abs(diff).bit_length()
                bits.append(format(size, "04b"))
                if size:
                    bits.append(format(diff if diff > 0 else diff + (1 << size) - 1, f"0{size}b"))
                bits.append("0")
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    data = bytearray()
    for i in range(0, len(stream), 8):
        data.append(int(stream[i : i + 8], 2))
        if data[-1] == 0xFF:
            data.append(0)
    return out + bytes(data) + b"\xff\xd9"


def test_cmyk_jpeg_comes_out_rgb(tmp_path):
    # Adobe CMYK JPEGs store inverted ink: 255 = no ink.
    blocks = np.array([[[255, 255, 255, 255], [255, 255, 255, 0], [0, 255, 255, 255], [255, 255, 0, 255]]], np.uint8)
    (tmp_path / "cmyk.jpg").write_bytes(_flat_block_jpeg(blocks, adobe_transform=0))
    inp = oiio.ImageInput.open(str(tmp_path / "cmyk.jpg"))
    assert inp.spec().get_string_attribute("jpeg:ColorSpace") == "CMYK"  # the file really is CMYK
    inp.close()
    loaded = read_image(tmp_path / "cmyk.jpg")
    assert loaded.pixels.shape == (8, 32, 3)
    expected = [[1, 1, 1], [0, 0, 0], [0, 1, 1], [1, 1, 0]]  # white, black, cyan, yellow
    np.testing.assert_allclose(loaded.pixels[4, 4::8], expected, atol=2 / 255)


# --------------------------------------------------------------------------- EXIF


def test_exif_exposure_read(tmp_path):
    path = _write_with_oiio(
        tmp_path / "e.jpg",
        np.full((8, 8, 3), 128, np.uint8),
        {"ExposureTime": 1 / 125, "FNumber": 5.6, "Exif:PhotographicSensitivity": 800},
    )
    exif = read_image(path).exif
    assert exif.exposure_time == pytest.approx(1 / 125, rel=1e-4)
    assert exif.f_number == pytest.approx(5.6, rel=1e-5)
    assert exif.iso == 800
    assert exif.orientation == 1


def test_no_exif_gives_none(tmp_path):
    exif = read_image(_write_with_oiio(tmp_path / "n.png", np.zeros((2, 2, 3), np.uint8))).exif
    assert exif == ExifInfo(exposure_time=None, f_number=None, iso=None, orientation=1)


def test_orientation_6_rotates_clockwise(tmp_path):
    # Stored 16x24 (H x W) with a bright block in the bottom-left corner; after a
    # 90 degree clockwise turn it must be top-left of a 24x16 image.
    stored = np.zeros((16, 24, 3), np.uint8)
    stored[8:16, 0:8] = 255
    stored[0:8, 16:24, 0] = 255  # red block top-right -> bottom-right after rotation
    path = _write_with_oiio(tmp_path / "o6.jpg", stored, {"Orientation": 6})
    loaded = read_image(path)
    assert loaded.exif.orientation == 6
    assert loaded.pixels.shape == (24, 16, 3)
    assert loaded.pixels[0:8, 0:8].mean() > 0.9
    assert loaded.pixels[16:24, 8:16, 0].mean() > 0.9 and loaded.pixels[16:24, 8:16, 1].mean() < 0.1
    assert loaded.pixels[0:8, 8:16].mean() < 0.1


def _exif_reference(stored: np.ndarray, orientation: int) -> np.ndarray:
    """Upright image per the EXIF definition of Orientation.

    OIIO's ImageBufAlgo.reorient is the reference for 1-4, 6 and 8; for 5 and 7
    it swaps transpose and transverse in OIIO 3.0 (OpenImageIO issue #4661), so
    those two come from the EXIF text: 5 = "row 0 is the visual left side,
    column 0 the visual top" (transpose), 7 = "row 0 is the visual right side,
    column 0 the visual bottom" (transverse).
    """
    if orientation == 5:
        return np.swapaxes(stored, 0, 1)
    if orientation == 7:
        return np.swapaxes(stored, 0, 1)[::-1, ::-1]
    buf = oiio.ImageBuf(np.ascontiguousarray(stored))
    buf.specmod().attribute("Orientation", orientation)
    return oiio.ImageBufAlgo.reorient(buf).get_pixels(oiio.FLOAT)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_all_values(tmp_path, orientation):
    stored = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) * 1000  # RGBA, asymmetric
    path = _write_with_oiio(tmp_path / "o.tif", stored, {"Orientation": orientation})
    loaded = read_image(path)
    assert loaded.exif.orientation == orientation
    expected = _exif_reference(stored.astype(np.float32) / 65535, orientation)
    assert expected.shape[:2] == ((2, 3) if orientation <= 4 else (3, 2))
    np.testing.assert_allclose(loaded.pixels, expected[..., :3], rtol=1e-6)
    np.testing.assert_allclose(loaded.alpha, expected[..., 3], rtol=1e-6)


def test_apply_orientation_known_values():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(apply_orientation(a, 1), a)
    np.testing.assert_array_equal(apply_orientation(a, 2), [[3, 2, 1], [6, 5, 4]])
    np.testing.assert_array_equal(apply_orientation(a, 3), [[6, 5, 4], [3, 2, 1]])
    np.testing.assert_array_equal(apply_orientation(a, 4), [[4, 5, 6], [1, 2, 3]])
    np.testing.assert_array_equal(apply_orientation(a, 5), [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(apply_orientation(a, 6), [[4, 1], [5, 2], [6, 3]])
    np.testing.assert_array_equal(apply_orientation(a, 7), [[6, 3], [5, 2], [4, 1]])
    np.testing.assert_array_equal(apply_orientation(a, 8), [[3, 6], [2, 5], [1, 4]])
    with pytest.raises(ValueError):
        apply_orientation(a, 9)


# --------------------------------------------------------------------------- odd sizes


@pytest.mark.parametrize("shape", [(1, 1), (1, 4000), (4000, 1)])
def test_extreme_shapes(tmp_path, shape):
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    loaded = read_image(_write_with_oiio(tmp_path / "s.png", codes))
    assert loaded.pixels.shape == (*shape, 3)
    np.testing.assert_array_equal(np.rint(loaded.pixels * 255), codes)


def test_max_pixels_boundary(tmp_path):
    path = _write_with_oiio(tmp_path / "b.png", np.zeros((10, 10, 3), np.uint8))
    assert read_image(path, max_pixels=100).pixels.shape == (10, 10, 3)
    with pytest.raises(UnsupportedImageError, match="10 x 10 = 100 pixels, above the limit of 99"):
        read_image(path, max_pixels=99)


# --------------------------------------------------------------------------- list_inputs


def test_list_inputs_expands_folders(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ["b.jpg", "A.PNG", "c.exr", "notes.txt", ".hidden.png", ".x.tmp.exr", "d.Hdr"]:
        (folder / name).write_bytes(b"x")
    (folder / "sub").mkdir()
    (folder / "sub" / "e.jpg").write_bytes(b"x")
    (folder / "dir.jpg").mkdir()  # a folder with an image-like name is not a file
    single = tmp_path / "single.txt"
    single.write_bytes(b"x")
    got = list_inputs([single, str(folder)])
    assert got == [single] + [folder / n for n in ["A.PNG", "b.jpg", "c.exr", "d.Hdr"]]
    assert all(isinstance(p, Path) for p in got)


def test_list_inputs_empty_folder_and_missing(tmp_path):
    assert list_inputs([tmp_path]) == []
    missing = tmp_path / "nope.jpg"
    with pytest.raises(UnsupportedImageError, match="no such file or folder") as excinfo:
        list_inputs([tmp_path, missing])
    assert str(missing) in str(excinfo.value) and "\n" not in str(excinfo.value)
