"""Tests for inference/io/read.py: channel layouts, EXIF, orientation, odd sizes, input lists.

All files are made in tmp_path (with OpenImageIO, or byte by byte where it
cannot write the variant).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import write_with_oiio

from ldr2hdr.inference.errors import UnsupportedImageError
from ldr2hdr.inference.io import (
    ExifInfo,
    apply_orientation,
    list_inputs,
    read_image,
)


# --------------------------------------------------------------------------- channel layouts


def test_gray_png_replicated_to_rgb(tmp_path):
    gray = (np.arange(12 * 10).reshape(12, 10, 1) * 2).astype(np.uint8)
    loaded = read_image(write_with_oiio(tmp_path / "g.png", gray))
    assert loaded.pixels.shape == (12, 10, 3) and loaded.alpha is None
    for c in range(3):
        np.testing.assert_array_equal(np.rint(loaded.pixels[..., c] * 255), gray[..., 0])


def test_gray_alpha_png(tmp_path):
    gray = np.full((3, 4), 200, np.uint8)
    alpha = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    loaded = read_image(write_with_oiio(tmp_path / "ga.png", np.stack([gray, alpha], -1)))
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
    write_with_oiio(tmp_path / f"a{ext}", rgba, attributes)
    loaded = read_image(tmp_path / f"a{ext}")
    assert loaded.pixels.shape == (8, 8, 3) and loaded.alpha.shape == (8, 8)
    np.testing.assert_allclose(loaded.alpha, 100 / 255, atol=1 / 255)
    np.testing.assert_allclose(
        loaded.pixels, np.broadcast_to([200 / 255, 100 / 255, 50 / 255], (8, 8, 3)), atol=1.5 / 255
    )


@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_16bit_integer_scaled_by_65535(tmp_path, ext):
    codes = np.array([[[0, 1, 65535], [32768, 1000, 65534]]], np.uint16)
    loaded = read_image(write_with_oiio(tmp_path / f"a{ext}", codes))
    assert loaded.bits == 16 and not loaded.is_hdr
    np.testing.assert_array_equal(np.rint(loaded.pixels.astype(np.float64) * 65535), codes)


def test_float_tiff_is_hdr(tmp_path, hdr_test_image):
    hdr = hdr_test_image(5, 6)
    loaded = read_image(write_with_oiio(tmp_path / "f.tif", hdr))
    assert loaded.is_hdr and loaded.bits == 32 and loaded.format == "tiff"
    np.testing.assert_array_equal(loaded.pixels, hdr)


def test_radiance_hdr_read(tmp_path, hdr_test_image):
    hdr = hdr_test_image(5, 6)
    loaded = read_image(write_with_oiio(tmp_path / "f.HDR", hdr))
    assert loaded.is_hdr and loaded.format == "hdr"
    # RGBE shares one exponent per pixel: error is relative to the brightest channel
    error = np.abs(loaded.pixels - hdr) / hdr.max(axis=-1, keepdims=True)
    assert error.max() < 1 / 128


def test_more_than_four_channels_picks_rgb_by_name(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.random((6, 7, 6)).astype(np.float32)
    names = ["Z", "B", "G", "R", "depth", "A"]
    loaded = read_image(write_with_oiio(tmp_path / "multi.exr", data, channelnames=names))
    np.testing.assert_allclose(loaded.pixels, data[..., [3, 2, 1]], rtol=1e-3)
    np.testing.assert_allclose(loaded.alpha, data[..., 5], rtol=1e-3)


def test_multiview_channels_use_first_layer(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.random((4, 5, 6)).astype(np.float32)
    names = ["left.R", "left.G", "left.B", "right.R", "right.G", "right.B"]
    loaded = read_image(write_with_oiio(tmp_path / "views.exr", data, channelnames=names))
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
    path = write_with_oiio(
        tmp_path / "e.jpg",
        np.full((8, 8, 3), 128, np.uint8),
        {"ExposureTime": 1 / 125, "FNumber": 5.6, "Exif:PhotographicSensitivity": 800},
    )
    exif = read_image(path).exif
    assert exif.exposure_time == pytest.approx(1 / 125, rel=1e-4)
    assert exif.f_number == pytest.approx(5.6, rel=1e-5)
    assert exif.iso == 800
    assert exif.orientation == 1


@pytest.mark.parametrize("make, model, camera", [("Canon", "Canon EOS 5D Mark II", "Canon EOS 5D Mark II"),
                                                 ("NIKON CORPORATION", "NIKON D7000", "NIKON D7000"),
                                                 ("Apple", "iPhone 13", "Apple iPhone 13"),
                                                 ("FUJIFILM", "", "FUJIFILM")])
def test_exif_names_the_camera(tmp_path, make, model, camera):
    attrs = {"Make": make, **({"Model": model} if model else {})}
    path = write_with_oiio(tmp_path / "c.jpg", np.full((8, 8, 3), 128, np.uint8), attrs)
    assert read_image(path).exif.camera == camera


def test_no_exif_gives_none(tmp_path):
    exif = read_image(write_with_oiio(tmp_path / "n.png", np.zeros((2, 2, 3), np.uint8))).exif
    assert exif == ExifInfo(exposure_time=None, f_number=None, iso=None, camera=None, orientation=1)


def test_orientation_6_rotates_clockwise(tmp_path):
    # Stored 16x24 (H x W) with a bright block in the bottom-left corner; after a
    # 90 degree clockwise turn it must be top-left of a 24x16 image.
    stored = np.zeros((16, 24, 3), np.uint8)
    stored[8:16, 0:8] = 255
    stored[0:8, 16:24, 0] = 255  # red block top-right -> bottom-right after rotation
    path = write_with_oiio(tmp_path / "o6.jpg", stored, {"Orientation": 6})
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
    path = write_with_oiio(tmp_path / "o.tif", stored, {"Orientation": orientation})
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
    loaded = read_image(write_with_oiio(tmp_path / "s.png", codes))
    assert loaded.pixels.shape == (*shape, 3)
    np.testing.assert_array_equal(np.rint(loaded.pixels * 255), codes)


def test_max_pixels_boundary(tmp_path):
    path = write_with_oiio(tmp_path / "b.png", np.zeros((10, 10, 3), np.uint8))
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
