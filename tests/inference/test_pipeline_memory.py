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
    rng = np.random.default_rng(5)
    h = width // 2
    yy, xx = np.mgrid[0:h, 0:width]
    sky = 0.3 + 0.4 * (1 - yy / h)[..., None] * np.array([0.6, 0.8, 1.0])
    sun = (xx - width * 0.3) ** 2 + (yy - h * 0.3) ** 2 <= (width * 0.02) ** 2
    lamp = (xx - width * 0.8) ** 2 + (yy - h * 0.6) ** 2 <= (width * 0.01) ** 2
    ldr = sky + rng.normal(0, 0.02, (h, width, 3))
    ldr[sun | lamp] = 1.0
    ldr = (np.round(np.clip(ldr, 0, 1) * 255) / 255).astype(np.float32)
    settings = pipeline.Settings(panorama="on")
    kept = pipeline.run(ldr, settings)
    freed = pipeline.run(ldr, settings, keep_intermediates=False)
    assert freed.linear is None and freed.mask is None and kept.linear is not None
    assert len(freed.sources) == len(kept.sources) >= 2
    assert freed.sources == kept.sources
    np.testing.assert_array_equal(freed.hdr, kept.hdr)
    # and the restoration changed something (sun and lamp restored above the clip level)
    assert float(freed.hdr.max()) > 2.0
