"""Tests for inference/io/write.py: EXR, PNG and JPEG writing, metadata, atomic writes.

All files are made in tmp_path; the only external data are bpy's studio lights.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from ldr2hdr.inference.errors import Ldr2HdrError, OutputExistsError
from ldr2hdr.inference.io import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    ExifInfo,
    LoadedImage,
    read_exr_metadata,
    read_image,
    write,
    write_exr,
    write_jpeg,
    write_png,
)


def _files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# --------------------------------------------------------------------------- constants


def test_interface_constants():
    assert SUPPORTED_EXTENSIONS == (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".exr", ".hdr")
    assert DEFAULT_MAX_PIXELS == 16384 * 8192 * 2
    assert ExifInfo(None, None, None).orientation == 1


# --------------------------------------------------------------------------- EXR


def test_exr_half_round_trip_keeps_bright_and_tiny_values(tmp_out, hdr_test_image):
    hdr = hdr_test_image()
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


def test_exr_float_round_trip_is_exact(tmp_out, hdr_test_image):
    hdr = hdr_test_image()
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
    with caplog.at_level(logging.WARNING, logger="ldr2hdr.inference.io"):
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
def test_exr_compressions(tmp_out, compression, rtol, hdr_test_image):
    hdr = hdr_test_image(32, 32)
    path = tmp_out / f"{compression}.exr"
    write_exr(path, hdr, compression=compression)
    inp = oiio.ImageInput.open(str(path))
    stored = inp.spec().get_string_attribute("compression")
    inp.close()
    assert stored == compression
    np.testing.assert_allclose(read_image(path).pixels, hdr, rtol=rtol, atol=1e-4)


def test_exr_compression_with_level(tmp_out, hdr_test_image):
    write_exr(tmp_out / "d.exr", hdr_test_image(), compression="dwaa:45")
    inp = oiio.ImageInput.open(str(tmp_out / "d.exr"))
    assert inp.spec().get_string_attribute("compression") == "dwaa"
    inp.close()


@pytest.mark.parametrize("compression", ["lzma", "zip:fast", "", "dwaa:-1"])
def test_exr_unknown_compression_refused(tmp_out, compression, hdr_test_image):
    with pytest.raises(ValueError, match="compression"):
        write_exr(tmp_out / "x.exr", hdr_test_image(), compression=compression)
    assert _files_in(tmp_out) == []


def test_exr_with_alpha_round_trip(tmp_out, hdr_test_image):
    rgba = np.concatenate([hdr_test_image(4, 5), np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5, 1)], -1)
    write_exr(tmp_out / "a.exr", rgba, half=False)
    loaded = read_image(tmp_out / "a.exr")
    np.testing.assert_array_equal(loaded.pixels, rgba[..., :3])
    np.testing.assert_array_equal(loaded.alpha, rgba[..., 3])


def test_exr_metadata_round_trip(tmp_out, hdr_test_image):
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
    write_exr(path, hdr_test_image(), metadata=metadata)
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


def test_exr_metadata_unstorable_value_refused(tmp_out, hdr_test_image):
    with pytest.raises(ValueError, match="metadata"):
        write_exr(tmp_out / "m.exr", hdr_test_image(), metadata={"bad": object()})
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
    with caplog.at_level(logging.INFO, logger="ldr2hdr.inference.io"):
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
    real_close = oiio.ImageOutput.close  # EXR files are written as scanlines through an ImageOutput

    def close_then_competitor(self, *args, **kwargs):
        ok = real_close(self, *args, **kwargs)
        target.write_bytes(b"competitor")
        return ok

    monkeypatch.setattr(oiio.ImageOutput, "close", close_then_competitor)
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

    def partial_scanlines(self, *args, **kwargs):
        return False  # the EXR writer (scanlines) died midway: the temporary file holds part of it

    monkeypatch.setattr(oiio.ImageBuf, "write", partial_write)
    monkeypatch.setattr(oiio.ImageOutput, "write_scanlines", partial_scanlines)
    with pytest.raises(Ldr2HdrError) as excinfo:
        WRITERS[ext](target)
    assert "\n" not in str(excinfo.value) and str(target) in str(excinfo.value)
    assert target.read_bytes() == b"old"
    assert _files_in(tmp_out) == [f"out.{ext}"]


def test_failed_rename_removes_temporary(tmp_out, monkeypatch):
    target = tmp_out / "out.exr"

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(write.os, "replace", broken_replace)
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
