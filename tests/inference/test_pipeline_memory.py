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
