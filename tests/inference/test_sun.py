"""Sun extraction (inference/lighting/sun.py) and ``ldr2hdr extract-sun``: suns of known
direction, size and power added to skies, on real panoramas shipped with bpy, and bad input."""

import json
import math

import numpy as np
import pytest

from ldr2hdr.inference import cli, io
from ldr2hdr.inference.errors import Ldr2HdrError
from ldr2hdr.inference.imaging import equirect_directions, equirect_solid_angle
from ldr2hdr.inference.lighting import sun as sun_mod

LUMA = sun_mod.LUMA


def _normals(n=64):
    k = np.arange(n) + 0.5
    y = 1 - 2 * k / n
    r = np.sqrt(1 - y * y)
    phi = k * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def _irradiance(m, normals):
    h, w = m.shape[:2]
    d, om = equirect_directions(h, w).reshape(-1, 3), equirect_solid_angle(h, w).reshape(-1)
    return (np.maximum(normals @ d.T, 0) * om) @ m.reshape(-1, 3).astype(np.float64)


def _direction(el_deg, az_deg):
    el, az = math.radians(el_deg), math.radians(az_deg)
    return np.array([math.cos(el) * math.sin(az), math.sin(el), -math.cos(el) * math.cos(az)])


def _sky(h=256):
    """A smooth sky: brighter towards the zenith, a dim ground."""
    d = equirect_directions(h, 2 * h)
    y = d[..., 1]
    return (np.where(y > 0, 0.2 + 0.3 * y, 0.05)[..., None] * np.array([0.7, 0.85, 1.0])).astype(np.float32)


def _with_disc(m, direction, diameter_deg, power, color=(1.0, 0.85, 0.6)):
    h, w = m.shape[:2]
    d, om = equirect_directions(h, w), equirect_solid_angle(h, w)
    cos_d = d @ direction
    theta = np.degrees(np.arccos(np.clip(cos_d, -1, 1)))
    cover = np.clip((diameter_deg / 2 - theta) / (180 / h) + 0.5, 0, 1)
    col = np.asarray(color) / (np.asarray(color) @ LUMA)
    radiance = power / (cover * om * np.maximum(cos_d, 0)).sum()
    return (m + (cover * radiance)[..., None] * col).astype(np.float32)


@pytest.mark.parametrize("el, az, diameter", [(30, 40, 2.0), (60, -100, 2.5), (10, 179.8, 1.5), (84, 10, 2.5)])
def test_a_known_sun_is_measured_and_removed_without_changing_the_light(el, az, diameter):
    sky = _sky()
    direction = _direction(el, az)
    power = 4 * float(_irradiance(sky, direction[None])[0] @ LUMA)
    m = _with_disc(sky, direction, diameter, power)
    ex = sun_mod.extract_sun(m)
    assert ex.sun is not None, ex.reason
    s = ex.sun
    assert math.degrees(math.acos(min(1.0, float(np.dot(s.direction, direction))))) < 1.0
    assert abs(s.angle_deg / diameter - 1) < 0.25
    assert abs(float(np.dot(s.irradiance_rgb, LUMA)) / power - 1) < 0.10
    assert s.color[0] == pytest.approx(1.0) and s.color[2] == pytest.approx(0.6, abs=0.05)
    assert abs(s.elevation_deg - el) < 1.0
    # the map keeps no extra light and changes only around the sun
    assert np.all(ex.without_sun <= m + 1e-6)
    changed = np.abs(ex.without_sun - m).max(axis=-1) > 0
    theta = np.degrees(np.arccos(np.clip(equirect_directions(*m.shape[:2]) @ direction, -1, 1)))
    assert changed.any() and theta[changed].max() < diameter / 2 + 3
    # map without the sun + the lamp light every surface as the map does (within 2 %)
    normals = _normals()
    before = _irradiance(m, normals) @ LUMA
    after = _irradiance(ex.without_sun, normals) @ LUMA + sun_mod.lamp_irradiance(s, normals) @ LUMA
    assert np.max(np.abs(after - before) / before) < 0.02


def test_a_sun_across_the_seam_is_one_sun():
    sky = _sky()
    direction = _direction(20, 180.0)  # centred on the left/right edge of the image
    m = _with_disc(sky, direction, 2.0, 10.0)
    ex = sun_mod.extract_sun(m)
    assert ex.sun is not None
    assert math.degrees(math.acos(min(1.0, float(np.dot(ex.sun.direction, direction))))) < 1.0
    assert float(np.dot(ex.sun.irradiance_rgb, LUMA)) == pytest.approx(10.0, rel=0.1)


def test_a_sky_without_a_compact_source_has_no_sun():
    ex = sun_mod.extract_sun(_sky())
    assert ex.sun is None and ex.without_sun is None
    assert "no sun" in ex.reason


def test_a_weak_compact_light_is_a_candidate_but_not_a_sun():
    sky = _sky()
    direction = _direction(40, 0)
    weak = 0.1 * float(_irradiance(sky, direction[None])[0] @ LUMA)
    ex = sun_mod.extract_sun(_with_disc(sky, direction, 2.0, weak))
    assert ex.sun is None and ex.candidate is not None
    assert ex.candidate.share < sun_mod.MIN_SHARE
    assert "%" in ex.reason


def test_a_large_bright_light_is_not_a_sun():
    sky = _sky()
    direction = _direction(30, 20)
    power = 4 * float(_irradiance(sky, direction[None])[0] @ LUMA)
    ex = sun_mod.extract_sun(_with_disc(sky, direction, 8.0, power))
    assert ex.sun is None and "across" in ex.reason
    assert ex.candidate.angle_deg == pytest.approx(8.0, rel=0.25)
    assert sun_mod.extract_sun(_with_disc(sky, direction, 8.0, power), max_angle_deg=10).sun is not None


def test_a_light_below_the_horizon_is_not_a_sun():
    sky = _sky()
    ex = sun_mod.extract_sun(_with_disc(sky, _direction(-30, 0), 2.0, 20.0))
    assert ex.sun is None and "below the horizon" in ex.reason


def test_real_panoramas_from_bpy(studio_light):
    sunrise = io.read_image(studio_light("sunrise")).pixels
    ex = sun_mod.extract_sun(sunrise)
    assert ex.sun is not None and 0 < ex.sun.elevation_deg < 20 and ex.sun.share > 0.5
    forest = io.read_image(studio_light("forest")).pixels
    assert sun_mod.extract_sun(forest).sun is None


@pytest.mark.parametrize("shape", [(64, 64, 3), (100, 150, 3), (64, 128)])
def test_not_a_panorama_is_refused(shape):
    with pytest.raises(Ldr2HdrError):
        sun_mod.extract_sun(np.ones(shape, np.float32))


def test_non_finite_values_are_refused():
    m = _sky(64)
    m[3, 4, 0] = np.nan
    with pytest.raises(Ldr2HdrError, match="finite"):
        sun_mod.extract_sun(m)


def test_cli_writes_the_sun_and_the_map_without_it(tmp_path, capsys):
    sky = _sky(128)
    m = _with_disc(sky, _direction(35, -60), 2.0, 8.0)
    io.write_exr(tmp_path / "pano.exr", m, half=False)
    io.write_exr(tmp_path / "overcast.exr", sky, half=False)
    io.write_png(tmp_path / "photo.png", np.clip(sky, 0, 1))
    out = tmp_path / "out"
    rc = cli.main(["extract-sun", str(tmp_path / "pano.exr"), str(tmp_path / "overcast.exr"), str(tmp_path / "photo.png"),
                   "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 1  # the PNG is not an HDR map
    assert "photo.png" in captured.err and "reconstruct" in captured.err and "Traceback" not in captured.err
    record = json.loads((out / "pano.sun.json").read_text())
    assert record["sun"]["elevation_deg"] == pytest.approx(35, abs=1)
    assert record["sun"]["strength"] > 0 and record["map_without_sun"] == "pano.nosun.exr"
    without = io.read_image(out / "pano.nosun.exr").pixels
    assert without.max() < m.max() / 10
    assert json.loads(io.read_exr_metadata(out / "pano.nosun.exr")["sun"])["angle_deg"] == pytest.approx(2, rel=0.25)
    assert json.loads((out / "overcast.sun.json").read_text())["sun"] is None
    assert not (out / "overcast.nosun.exr").exists() and not list(out.glob("photo.*"))
    # outputs are not replaced without --overwrite
    assert cli.main(["extract-sun", str(tmp_path / "pano.exr"), "-o", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_the_sun_core_runs_without_torch():
    """Blender's own Python has no torch: the operator imports this core there."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np\n"
            "from ldr2hdr.inference.lighting import sun\n"
            "m = np.full((64, 128, 3), 0.2, np.float32); m[20, 40] = 5000.0\n"
            "assert sun.extract_sun(m).sun is not None\n"
            "assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_reconstructed_sun_blob_listed_as_a_sun_becomes_a_lamp():
    """A reconstruction spreads a clipped sun over its blob; with the pipeline's source list the
    light above the blob's clip level becomes a sun-sized lamp, and the light is kept."""
    sky = _sky()
    h, w = sky.shape[:2]
    direction = _direction(35, 30)
    d, om = equirect_directions(h, w), equirect_solid_angle(h, w)
    theta = np.degrees(np.arccos(np.clip(d @ direction, -1, 1)))
    blob = theta < 12
    m = sky.copy()
    m[blob] = 1.0  # the clip level
    m[blob] += (80.0 * np.exp(-(theta[blob] / 5.0) ** 2))[:, None]  # a broad restored bump
    assert sun_mod.extract_sun(m).sun is None  # the map alone shows no compact sun
    fill = float((om[blob] * (np.ones(3) @ LUMA)).sum())
    listed = [{"class": "sun", "direction": list(direction), "energy": 5 * fill, "clip_level_energy": fill,
               "solid_angle": float(om[blob].sum())},
              {"class": "lamp", "direction": [0, 1, 0], "energy": fill, "clip_level_energy": fill, "solid_angle": 0.1}]
    ex = sun_mod.extract_sun(m, sources=listed)
    assert ex.sun is not None, ex.reason
    assert ex.sun.angle_deg == sun_mod.SUN_ANGLE_DEG and "reconstruction" in ex.reason
    assert math.degrees(math.acos(min(1.0, float(np.dot(ex.sun.direction, direction))))) < 1.0
    # what stays is the clip-level blob; the light is kept where the sun faces a surface. The
    # lamp is smaller than the blob, so surfaces that see the blob edge-on get less: that is the
    # point (a sun is compact), and it moves the mean irradiance over all normals by under 3 %
    assert np.allclose(ex.without_sun[blob], 1.0, atol=1e-4)
    normals = np.concatenate([_normals(), direction[None]])
    before = _irradiance(m, normals) @ LUMA
    after = _irradiance(ex.without_sun, normals) @ LUMA + sun_mod.lamp_irradiance(ex.sun, normals) @ LUMA
    assert after[-1] == pytest.approx(before[-1], rel=0.01)
    assert np.mean(np.abs(after - before)) < 0.03 * np.mean(before)
    # a specular highlight as the brightest source, or a malformed list, changes nothing
    assert sun_mod.extract_sun(m, sources=[dict(listed[0], **{"class": "specular"})]).sun is None
    assert sun_mod.extract_sun(m, sources=[{"class": "sun"}]).sun is None
