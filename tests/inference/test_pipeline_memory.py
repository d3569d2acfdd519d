"""What the memory savings must not change: the pipeline never writes into its input (check_ldr
no longer copies an in-range image), and half EXRs hold exactly numpy's float16 of the pixels
(the conversion now happens in row bands before OpenImageIO sees them)."""

import numpy as np
import pytest

from ldr2hdr.inference import io, pipeline


@pytest.mark.parametrize("method", ["classical", "learned"])
def test_pipeline_leaves_its_input_untouched(method):
    rng = np.random.default_rng(3)
    ldr = np.round(rng.uniform(0.0, 1.0, (64, 128, 3)) * 255).astype(np.float32) / 255
    ldr[10:20, 30:50] = 1.0
    before = ldr.copy()
    result = pipeline.run(ldr, pipeline.Settings(method=method))
    np.testing.assert_array_equal(ldr, before)
    assert result.hdr is not ldr and not np.shares_memory(result.hdr, ldr)


def test_half_exr_holds_numpy_float16_values(tmp_path):
    rng = np.random.default_rng(4)
    pixels = np.minimum(rng.lognormal(0.0, 3.0, (300, 40, 3)), 60000).astype(np.float32)  # > one band of rows
    io.write_exr(tmp_path / "h.exr", pixels)
    back = io.read_image(tmp_path / "h.exr").pixels
    np.testing.assert_array_equal(back, pixels.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("width", [512, 2304])  # the network at full size, and at half size (in place)
def test_freeing_intermediates_gives_the_same_image_and_sources(width):
    # keep_intermediates=False (what ldr2hdr reconstruct runs) takes the energy step's view of
    # the clipped pixels first and lets the restoration overwrite the linear image: the result
    # must be the very same image, sources included
    ldr = (_sunny_codes(width) / 255).astype(np.float32)
    settings = pipeline.Settings(panorama="on")
    kept = pipeline.run(ldr, settings)
    freed = pipeline.run(ldr, settings, keep_intermediates=False)
    assert freed.linear is None and freed.mask is None and kept.linear is not None
    assert len(freed.sources) == len(kept.sources) >= 2
    assert freed.sources == kept.sources
    np.testing.assert_array_equal(freed.hdr, kept.hdr)
    # and the restoration changed something (sun and lamp restored above the clip level)
    assert float(freed.hdr.max()) > 2.0


# ----------------------------------------------------------------------------- row bands (large images)


def _sunny_codes(width, seed=5):
    """8-bit codes of a panorama with a clipped sun and lamp over a noisy sky."""
    rng = np.random.default_rng(seed)
    h = width // 2
    yy, xx = np.mgrid[0:h, 0:width]
    sky = 0.3 + 0.4 * (1 - yy / h)[..., None] * np.array([0.6, 0.8, 1.0])
    sun = (xx - width * 0.3) ** 2 + (yy - h * 0.3) ** 2 <= (width * 0.02) ** 2
    lamp = (xx - width * 0.8) ** 2 + (yy - h * 0.6) ** 2 <= (width * 0.01) ** 2
    ldr = sky + rng.normal(0, 0.02, (h, width, 3))
    ldr[sun | lamp] = 1.0
    return np.round(np.clip(ldr, 0, 1) * 255).astype(np.uint8)


def _assert_same_sources(got, want):
    assert len(got) == len(want) >= 2
    for a, b in zip(got, want):
        assert a.keys() == b.keys() and a["class"] == b["class"]
        for key in ("energy", "clip_level_energy", "solid_angle", "boost_stops"):
            assert a[key] == pytest.approx(b[key], rel=1e-5)


@pytest.mark.parametrize("changes", [
    {},  # the default above the dequantization limit (forced here): the curve looked up per code
    {"scale": "match-photo", "exposure": 1.0, "energy": "off"},
])
def test_banded_reconstruction_equals_the_whole_image_path(changes):
    # 2304 px wide: the network runs at half size, as it does on the large images the bands are for;
    # bands of 40 rows (not a multiple of the 256-row blend bands) over 1152 rows
    from ldr2hdr.inference import banded
    from ldr2hdr.inference.imaging import unit_float

    codes = _sunny_codes(2304)
    settings = pipeline.Settings(panorama="on", dequantize_max_pixels=1_000_000, **changes)
    whole = pipeline.run(unit_float(codes), settings, keep_intermediates=False)
    rec = banded.reconstruct(codes, settings, band_rows=40)
    assert rec.result.hdr is None and rec.result.linear is None
    image = np.concatenate(list(rec.bands()))
    np.testing.assert_allclose(image, whole.hdr, rtol=1e-6, atol=0)
    assert rec.max_value == pytest.approx(float(whole.hdr.max()), rel=1e-6)
    meta, want = dict(rec.result.metadata), dict(whole.metadata)
    if settings.energy == "auto":
        _assert_same_sources(rec.result.sources, whole.sources)
        assert float(image.max()) > 2.0  # the sun and the lamp were restored above the clip level
        meta.pop("sources"), want.pop("sources")
    else:
        assert rec.result.sources == whole.sources == []
    assert meta.keys() == want.keys()
    for key, value in want.items():
        assert meta[key] == (pytest.approx(value, rel=1e-6) if isinstance(value, float) else value), key
    # the image is made again for every write (the writer may start over as float)
    np.testing.assert_array_equal(np.concatenate(list(rec.bands())), image)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_bands_linearize_dequantize_and_mask_like_the_whole_image(dtype):
    # dequantization looks at neighbouring rows: a band is dequantized with a halo of rows
    from ldr2hdr.inference import banded, crf
    from ldr2hdr.inference.highlights import sources as srcs
    from ldr2hdr.inference.imaging import unit_float

    top = np.iinfo(dtype).max
    rng = np.random.default_rng(8)
    ramp = np.linspace(0.2, 1.0, 300)[:, None, None] * np.array([0.9, 1.0, 0.8])
    codes = np.round(np.clip(ramp + rng.normal(0, 0.002, (300, 120, 3)), 0, 1) * top).astype(dtype)
    codes[50:60, 10:30] = top
    ldr = unit_float(codes)
    inv = crf.parametric_inverse("gamma2.2")
    for settings in (pipeline.Settings(), pipeline.Settings(dequantize=False)):
        linear, mask = pipeline.linearize(ldr, inv, settings)
        image = banded._Bands(codes, inv, settings)
        for r0 in range(0, 300, 37):
            r1 = min(300, r0 + 37)
            np.testing.assert_array_equal(image.linear(r0, r1), linear[r0:r1])
            np.testing.assert_array_equal(image.mask(r0, r1), mask[r0:r1])
            np.testing.assert_array_equal(image.clipped(r0, r1), srcs.clipped_pixels(ldr[r0:r1]))
            np.testing.assert_array_equal(image.ldr(r0, r1), ldr[r0:r1])


def test_decoding_to_codes_gives_the_same_floats(tmp_path):
    from ldr2hdr.inference.imaging import unit_float

    rng = np.random.default_rng(9)
    pixels = rng.uniform(0, 1, (40, 60, 3)).astype(np.float32)
    io.write_jpeg(tmp_path / "a.jpg", pixels)
    io.write_png(tmp_path / "b.png", pixels, bits=16)
    io.write_png(tmp_path / "c.png", pixels[..., 0])  # gray: repeated to RGB
    for name, dtype in (("a.jpg", np.uint8), ("b.png", np.uint16), ("c.png", np.uint8)):
        codes = io.read_image(tmp_path / name, codes=True).pixels
        assert codes.dtype == dtype and codes.shape == (40, 60, 3)
        np.testing.assert_array_equal(unit_float(codes), io.read_image(tmp_path / name).pixels)


def test_exr_written_by_bands_is_the_one_write_exr_writes(tmp_path):
    import OpenImageIO as oiio

    rng = np.random.default_rng(10)
    pixels = rng.lognormal(0.0, 2.0, (130, 50, 3)).astype(np.float32)

    def written(path):
        inp = oiio.ImageInput.open(str(path))
        spec, data = inp.spec(), inp.read_image(oiio.FLOAT)
        inp.close()
        header = {a.name: a.value for a in spec.extra_attribs if a.name != "DateTime"}
        return data, spec.format, header

    meta = {"method": "learned", "sources": [{"energy": 1.5}]}
    for image in (pixels, np.where(pixels > 30, 1e6, pixels).astype(np.float32)):  # half, then too big for half
        io.write_exr(tmp_path / "whole.exr", image, metadata=meta)
        io.write_exr_bands(tmp_path / "bands.exr", 130, 50, lambda: (image[r:r + 32] for r in range(0, 130, 32)),
                           metadata=meta)
        a, b = written(tmp_path / "whole.exr"), written(tmp_path / "bands.exr")
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1] and a[2] == b[2]
    assert str(b[1]) == "float"
    with pytest.raises(ValueError):
        io.write_exr_bands(tmp_path / "short.exr", 130, 50, lambda: iter([pixels[:100]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bands.exr", "whole.exr"]  # nothing left behind


def test_reconstruct_command_runs_large_images_in_bands(tmp_path, monkeypatch):
    import json

    from ldr2hdr.inference import banded, cli
    from ldr2hdr.inference.imaging import unit_float

    io.write_png(tmp_path / "pano.png", unit_float(_sunny_codes(2304)))
    calls = []
    reconstruct = banded.reconstruct
    monkeypatch.setattr(banded, "reconstruct", lambda *a, **k: calls.append(1) or reconstruct(*a, **k))
    outputs = {}
    for name, min_pixels in (("whole", 10 ** 12), ("bands", 0)):
        monkeypatch.setattr(banded, "MIN_PIXELS", min_pixels)
        out = tmp_path / name
        assert cli.main(["reconstruct", str(tmp_path / "pano.png"), "-o", str(out), "-q", "--crf-json",
                         "--dequantize-max-mp", "1", "--report", str(tmp_path / f"{name}.json")]) == 0
        outputs[name] = (io.read_image(out / "pano.exr").pixels, io.read_exr_metadata(out / "pano.exr"),
                         json.loads((out / "pano.sources.json").read_text())["sources"],
                         json.loads((tmp_path / f"{name}.json").read_text()))
    assert len(calls) == 1  # the second run only
    (a, meta_a, src_a, rep_a), (b, meta_b, src_b, rep_b) = outputs["whole"], outputs["bands"]
    np.testing.assert_allclose(b, a, rtol=2e-3)  # half floats
    assert meta_a.keys() == meta_b.keys()
    _assert_same_sources(src_b, src_a)
    row_a, row_b = (rep["inputs"][0] for rep in (rep_a, rep_b))
    assert row_b["max_value"] == pytest.approx(row_a["max_value"], rel=1e-6)


def test_blend_runs_only_under_the_mask_with_the_same_pixels():
    # outside the mask the blend gives the linear value exactly, so only the masked pixels go
    # through it; a NaN increase still goes through the whole blend and stays visible
    import torch

    from ldr2hdr.inference import kernels
    from ldr2hdr.inference.highlights import learned

    rng = np.random.default_rng(11)
    linear = rng.uniform(0.0, 1.0, (37, 53, 3)).astype(np.float32)
    mask = np.where(rng.random((37, 53)) < 0.05, rng.uniform(0.0, 1.0, (37, 53)), 0.0).astype(np.float32)
    increase = rng.uniform(0.0, 3.0, (37, 53)).astype(np.float32)

    def everywhere(d):
        lin = torch.from_numpy(linear).permute(2, 0, 1)[None].contiguous()
        y = learned.to_log(lin) + torch.from_numpy(d)[None, None]
        return kernels.blend(lin, y, torch.from_numpy(mask)[None, None], y_max=learned.MAX_LOG)[0].permute(1, 2, 0).numpy()

    np.testing.assert_allclose(learned.blend_rows(linear, mask, increase), everywhere(increase), rtol=1e-6, atol=0)
    np.testing.assert_array_equal(learned.blend_rows(linear, mask, increase)[mask == 0], linear[mask == 0])
    broken = increase.copy()
    broken[mask == 0] = np.nan  # where 0 * NaN is NaN
    np.testing.assert_array_equal(np.isnan(learned.blend_rows(linear, mask, broken)), np.isnan(everywhere(broken)))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channel_max_is_the_largest_channel_in_a_new_array(dtype, channels):
    from ldr2hdr.inference.imaging import channel_max

    img = (np.random.default_rng(channels).random((7, 9, channels)) * 200).astype(dtype)
    got = channel_max(img)
    np.testing.assert_array_equal(got, img.max(axis=-1))
    assert got.dtype == img.dtype and not np.shares_memory(got, img)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_ldr_refuses_a_single_non_finite_pixel(bad):
    img = np.full((5, 6, 3), 0.5, np.float32)
    img[3, 4, 1] = bad
    with pytest.raises(pipeline.Ldr2HdrError, match="NaN or infinite"):
        pipeline.check_ldr(img)
    img[3, 4, 1] = 0.25
    assert pipeline.check_ldr(img) is img  # in range: no copy
