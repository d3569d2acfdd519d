"""Output units (inference/lighting/units.py): relative, physical from EXIF, matched to the photo;
through the pipeline and the command line."""

import numpy as np
import OpenImageIO as oiio
import pytest

from ldr2hdr.inference import cli, crf, io, pipeline
from ldr2hdr.inference.errors import Ldr2HdrError
from ldr2hdr.inference.io.read import ExifInfo
from ldr2hdr.inference.lighting import units


def test_exif_scale_follows_the_meter_equation():
    # 1/100 s, f/8, ISO 100: mid-grey is 12.5 * 64 / (0.01 * 100) = 800 cd/m^2
    s = units.exif_scale(0.01, 8.0, 100.0)
    assert s * units.MID_GREY * units.LUMENS_PER_WATT == pytest.approx(800.0)
    # one stop more exposure time: the same pixel value is half the luminance
    assert units.exif_scale(0.02, 8.0, 100.0) == pytest.approx(s / 2)
    assert units.exif_scale(0.01, 8.0, 200.0) == pytest.approx(s / 2)
    assert units.exif_scale(0.01, 11.3137, 100.0) == pytest.approx(2 * s, rel=1e-4)


@pytest.mark.parametrize("missing", [(None, 8.0, 100.0), (0.01, None, 100.0), (0.01, 8.0, 0.0), (float("nan"), 8, 100)])
def test_exif_scale_needs_all_three(missing):
    assert units.exif_scale(*missing) is None
    scale, mode, note = units.output_scale("exif", np.zeros((4, 4, 3)), np.zeros((4, 4, 3)),
                                           ExifInfo(*missing))
    assert (scale, mode) == (1.0, "relative") and "no EXIF" in note


def test_match_photo_brings_the_mid_tones_to_the_photo():
    rng = np.random.default_rng(0)
    ldr = rng.uniform(0.05, 1.0, (32, 32, 3)).astype(np.float32)
    linear = crf.srgb_to_linear(ldr) * 0.37
    s = units.match_photo_scale(ldr, linear)
    assert s == pytest.approx(1 / 0.37, rel=1e-4)
    # a dark photo without mid-tones keeps its scale
    assert units.match_photo_scale(np.full((8, 8, 3), 0.02, np.float32), linear[:8, :8]) == 1.0


def test_unknown_mode_is_refused():
    with pytest.raises(Ldr2HdrError):
        pipeline.Settings(scale="lux")


def _photo():
    y, x = np.mgrid[0:48, 0:96].astype(np.float32)
    ldr = np.stack([0.2 + 0.7 * x / 96, 0.3 + 0.6 * y / 48, np.full_like(x, 0.5)], -1)
    ldr[10:14, 40:46] = 1.0
    return ldr


def test_pipeline_scales_the_result_and_records_the_units():
    ldr = _photo()
    exif = ExifInfo(exposure_time=1 / 250, f_number=5.6, iso=200)
    base = pipeline.Settings(method="classical")
    rel = pipeline.run(ldr, base, exif=exif)
    phys = pipeline.run(ldr, base.with_(scale="exif", exposure=1.0), exif=exif)
    s = units.exif_scale(1 / 250, 5.6, 200)
    np.testing.assert_allclose(phys.hdr, rel.hdr * s * 2, rtol=1e-5)
    assert phys.metadata["scale_mode"] == "exif" and "W m^-2 sr^-1" in phys.metadata["units"]
    assert phys.metadata["exposure_scale"] == pytest.approx(2 * s)
    assert rel.metadata["scale_mode"] == "relative"
    # no EXIF: relative, and the metadata says why
    none = pipeline.run(ldr, base.with_(scale="exif"))
    np.testing.assert_allclose(none.hdr, rel.hdr)
    assert "no EXIF" in none.metadata["units"]


def test_cli_scale_exif_from_the_jpeg(tmp_path, caplog):
    ldr = _photo()
    buf = oiio.ImageBuf(np.ascontiguousarray(np.round(ldr * 255).astype(np.uint8)))
    spec = buf.specmod()
    for name, value in {"ExposureTime": 1 / 125, "FNumber": 4.0, "Exif:PhotographicSensitivity": 400}.items():
        spec.attribute(name, value)
    assert buf.write(str(tmp_path / "cam.jpg")), buf.geterror()
    io.write_png(tmp_path / "noexif.png", ldr)
    common = ["--method", "classical", "--float", "-q"]
    assert cli.main(["reconstruct", str(tmp_path / "cam.jpg"), "-o", str(tmp_path / "rel")] + common) == 0
    assert cli.main(["reconstruct", str(tmp_path / "cam.jpg"), str(tmp_path / "noexif.png"),
                     "-o", str(tmp_path / "abs"), "--scale", "exif"] + common) == 0
    assert any("noexif.png" in r.getMessage() and "no EXIF" in r.getMessage() for r in caplog.records)
    rel = io.read_image(tmp_path / "rel" / "cam.exr").pixels
    out = io.read_image(tmp_path / "abs" / "cam.exr").pixels
    np.testing.assert_allclose(out, rel * units.exif_scale(1 / 125, 4.0, 400), rtol=1e-5)
    meta = io.read_exr_metadata(tmp_path / "abs" / "cam.exr")
    assert meta["scale_mode"] == "exif" and "683" in meta["units"]
