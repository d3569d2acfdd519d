"""Tiled inference: tiled == untiled for local functions, seamless wrap-around, bounded tiles."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ldr2hdr.inference.highlights.tiling import _axis_windows, run_tiled

torch.set_num_threads(1)


def _kernel(cin=3, cout=2, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(cout, cin, k, k, generator=g) / (cin * k * k)


def _local_fn(weight, *, periodic=False):
    """A 5x5 convolution: replicate padding, or circular columns when told the tile is a whole row."""
    p = weight.shape[-1] // 2

    def fn(tile, *, wrap_x):
        x = tile
        if wrap_x or periodic:
            x = F.pad(x, (p, p, 0, 0), mode="circular")
            x = F.pad(x, (0, 0, p, p), mode="replicate")
        else:
            x = F.pad(x, (p, p, p, p), mode="replicate")
        return F.conv2d(x, weight)

    return fn


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (100, 31), (17, 130)])
@pytest.mark.parametrize("tile,overlap", [(32, 12), (24, 8), (48, 20)])
def test_tiled_equals_untiled_for_local_function(shape, tile, overlap):
    h, w = shape
    img = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    fn = _local_fn(_kernel())
    whole = run_tiled(fn, img, 4096, 0)
    tiled = run_tiled(fn, img, tile, overlap)
    assert whole.shape == (1, 2, h, w)
    torch.testing.assert_close(tiled, whole, atol=2e-6, rtol=1e-5)


def test_panorama_tiles_match_a_periodic_whole_image():
    # Tiles that cross the 0/360 seam must see real neighbours: the result equals the
    # circularly padded whole-image result, so there is no seam anywhere.
    img = torch.rand(1, 3, 40, 160, generator=torch.Generator().manual_seed(1))
    fn = _local_fn(_kernel())
    periodic = _local_fn(_kernel(), periodic=True)
    whole = periodic(img, wrap_x=True)
    tiled = run_tiled(fn, img, 48, 16, wrap_x=True)
    torch.testing.assert_close(tiled, whole, atol=2e-6, rtol=1e-5)
    # and without wrap the seam columns differ (the test above can fail)
    flat = run_tiled(fn, img, 48, 16, wrap_x=False)
    assert (flat[..., :2] - whole[..., :2]).abs().max() > 1e-3


def test_panorama_tiling_is_roll_equivariant():
    img = torch.rand(1, 3, 32, 128, generator=torch.Generator().manual_seed(2))
    fn = _local_fn(_kernel())
    base = run_tiled(fn, img, 40, 12, wrap_x=True)
    for shift in (1, 17, 64):
        rolled = run_tiled(fn, torch.roll(img, shift, dims=-1), 40, 12, wrap_x=True)
        torch.testing.assert_close(rolled, torch.roll(base, shift, dims=-1), atol=2e-6, rtol=1e-5)


def test_single_wrapped_tile_is_told_to_wrap():
    seen = []

    def fn(tile, *, wrap_x):
        seen.append(wrap_x)
        return tile

    img = torch.rand(1, 1, 16, 32)
    run_tiled(fn, img, 64, 8, wrap_x=True)
    run_tiled(fn, img, 64, 8, wrap_x=False)
    run_tiled(fn, img, 16, 4, wrap_x=True)
    assert seen[0] is True and seen[1] is False and not any(seen[2:])


def test_tiles_never_exceed_the_tile_size_and_cover_everything():
    shapes = []

    def fn(tile, *, wrap_x):
        shapes.append(tuple(tile.shape[-2:]))
        return torch.ones_like(tile[:, :1])

    out = run_tiled(fn, torch.zeros(1, 2, 150, 333), 64, 16)
    assert max(max(s) for s in shapes) <= 64
    # normalised windows: a constant function gives exactly that constant
    torch.testing.assert_close(out, torch.ones(1, 1, 150, 333))


def test_writes_into_a_numpy_backed_output_in_place():
    img = np.random.default_rng(0).random((30, 70, 3), dtype=np.float32)
    out = np.full_like(img, np.nan)
    t_in = torch.from_numpy(img).permute(2, 0, 1)[None]
    res = run_tiled(lambda t, *, wrap_x: t * 2.0, t_in, 24, 8, out=torch.from_numpy(out).permute(2, 0, 1)[None])
    np.testing.assert_allclose(out, 2 * img, rtol=1e-6, atol=1e-6)
    assert np.shares_memory(res.numpy(), out)


@pytest.mark.parametrize("size", [1, 5, 63, 64, 65, 200, 1025])
@pytest.mark.parametrize("wrap", [False, True])
def test_axis_windows_partition_unity(size, wrap):
    total = np.zeros(size)
    for start, length, w in _axis_windows(size, 64, 16, wrap):
        idx = (np.arange(length) + start) % size
        np.add.at(total, idx, w.numpy().astype(np.float64))
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_bad_arguments_raise():
    fn = lambda t, *, wrap_x: t  # noqa: E731
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        run_tiled(fn, torch.zeros(3, 8, 8), 8, 0)
    with pytest.raises(ValueError, match="overlap"):
        run_tiled(fn, torch.zeros(1, 3, 8, 8), 8, 4)
    with pytest.raises(ValueError, match="returned shape"):
        run_tiled(lambda t, *, wrap_x: t[..., :-1], torch.zeros(1, 3, 20, 20), 8, 2)


def test_progress_is_reported_once_per_tile():
    calls = []
    x = torch.rand(1, 3, 100, 260)
    run_tiled(lambda t, wrap_x: t, x, 64, 8, True, progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert total > 4 and calls == [(i, total) for i in range(1, total + 1)]
