"""``ldr2hdr relight``: Cycles renders of two spheres on a ground plane lit by an HDR map.

The renders are tiny (64-160 px wide, 4-16 samples): each takes one or two seconds on the CPU.
"""

import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import cli, io  # noqa: E402
from ldr2hdr.inference.imaging import equirect_directions, equirect_solid_angle  # noqa: E402
from ldr2hdr.inference.lighting import sun as sun_mod  # noqa: E402
from ldr2hdr.render import relight, stage  # noqa: E402

#: Sun behind the spheres and to the right (map azimuth -60 deg): the diffuse sphere's shadow
#: falls towards the camera and to the left, in view and clear of the glossy sphere's.
SUN = (40.0, -60.0)  # elevation, azimuth (degrees)


def _direction(elevation_deg, azimuth_deg):
    """Unit vector of the map convention (``equirect_directions``): azimuth 0 at the centre column."""
    e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
    return np.array([math.cos(e) * math.sin(a), math.sin(e), -math.cos(e) * math.cos(a)])


def sun_map(height, irradiance, *, diameter_deg=None, sky=0.05, direction=SUN):
    """A ``height x 2 height`` map: ``sky`` above the horizon, ``0.3 sky`` below, plus a sun at
    ``direction`` (elevation, azimuth) giving ``irradiance`` on a surface facing it: a uniform disc
    of ``diameter_deg``, or the single pixel nearest the direction when it is None."""
    dirs = equirect_directions(height, 2 * height)
    c = _direction(*direction)
    hdr = np.where(dirs[..., 1:2] > 0, sky, 0.3 * sky).repeat(3, axis=-1).astype(np.float32)
    if diameter_deg is None:
        inside = np.zeros(dirs.shape[:2], bool)
        inside[np.unravel_index(int(np.argmax(dirs @ c)), inside.shape)] = True
    else:
        inside = dirs @ c >= math.cos(math.radians(diameter_deg / 2))
    omega = equirect_solid_angle(*dirs.shape[:2])
    hdr[inside] += irradiance / float((omega[inside] * (dirs[inside] @ c)).sum())
    return hdr


def test_cli_writes_one_png_with_the_three_panels(tmp_path, capfd):
    map_path, ref_path, out = tmp_path / "map.exr", tmp_path / "ref.exr", tmp_path / "preview.png"
    io.write_exr(map_path, sun_map(64, 3.0))
    io.write_exr(ref_path, sun_map(64, 3.0, diameter_deg=2.5, sky=0.08))
    rc = cli.main(["relight", str(map_path), "-o", str(out), "--extract-sun", "--reference", str(ref_path),
                   "--size", "64", "--samples", "4"])
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    print(captured.out)
    img = io.read_image(out)
    height, width = stage.panel_shape(64)
    assert img.pixels.shape == (height, 3 * width, 3) and not img.is_hdr
    panels = [img.pixels[:, i * width:(i + 1) * width] for i in range(3)]
    assert all(p.std() > 0.05 for p in panels)  # rendered spheres and shadows, not blank placeholders
    # one exposure for all panels: map and map - sun + lamp light the scene alike
    assert abs(panels[0].mean() - panels[1].mean()) < 0.05
    lines = captured.out.splitlines()
    for prefix in ("panel 1 map:", "panel 2 map without sun + Sun lamp", "panel 3 reference ref.exr:"):
        line = next(l for l in lines if l.startswith(prefix))
        assert "diffuse sphere mean" in line and "shadow edge" in line
    assert any(l.startswith("wrote ") for l in lines)


# In front of the spheres (their lit sides face the camera), to the right and to the left: two
# directions that are not parallel pin down the rotation from the map's axes to Blender's.
@pytest.mark.parametrize("front", [(40.0, 60.0), (25.0, 150.0)], ids=["right", "left-low"])
def test_a_sun_disc_in_the_map_and_the_equivalent_sun_lamp_light_the_sphere_alike(front):
    """The map's convention -> Blender's world axes, the lamp's rotation and its strength unit.

    A map holding only a 3 deg disc (irradiance 3 facing it) and a black world with a Sun lamp of
    strength 3 from the same direction light the diffuse sphere on the same side and equally
    bright. The tolerances (5 % on the mean, 10 % relative RMS per pixel; measured: 0.1 % and
    1.2 %) cover Monte Carlo noise at 16 samples and the disc's pixelation on the map's 1.4 deg
    grid; a lamp mirrored left-right (the classic equirect mistake) is off by far more (79 %).
    Both also match the analytic Lambertian sphere (sun + one bounce off the sunlit ground) within
    5 % (measured 1.5 %): Blender's Sun strength is the irradiance facing it, in W/m^2.
    """
    direction = _direction(*front)
    disc = sun_map(128, 3.0, diameter_deg=3.0, sky=0.0, direction=front)
    lamp = relight.Lamp(tuple(direction), 3.0, (1.0, 1.0, 1.0), 3.0)
    mirrored = relight.Lamp(tuple(direction * [-1.0, 1.0, 1.0]), 3.0, (1.0, 1.0, 1.0), 3.0)
    by_map = relight.render(disc, None, width=96, samples=16)
    by_lamp = relight.render(None, lamp, width=96, samples=16)
    by_mirrored = relight.render(None, mirrored, width=96, samples=16)

    height, width = by_map.shape[:2]
    mask = stage.interior_mask(stage.DIFFUSE, height, width)
    y = {name: stage.luminance(img)[mask] for name, img in
         (("map", by_map), ("lamp", by_lamp), ("mirrored", by_mirrored))}
    # What a Lambertian sphere shows, with its normals traced analytically: the sun's irradiance
    # (strength 3 W/m^2 facing it) plus one bounce off an endless sunlit ground, which a normal n
    # sees over the view factor (1 - n_z) / 2 (the sphere's own shadow on the ground left out).
    normals = stage.sphere_normals(stage.DIFFUSE, height, width)[mask]
    sun_blender = np.array(relight.map_direction_to_blender(direction))
    ground_radiance = stage.GROUND_ALBEDO / math.pi * 3.0 * sun_blender[2]
    direct = stage.DIFFUSE_ALBEDO / math.pi * 3.0 * np.maximum(normals @ sun_blender, 0.0)
    bounce = stage.DIFFUSE_ALBEDO / math.pi * ground_radiance * math.pi * (1.0 - normals[:, 2]) / 2.0

    def rel_rms(a, b):
        return float(np.sqrt(np.mean((a - b) ** 2)) / np.mean(b))

    means = {k: float(v.mean()) for k, v in y.items()}
    print(f"sun {front}: diffuse sphere mean: map {means['map']:.4f}, lamp {means['lamp']:.4f}, mirrored lamp "
          f"{means['mirrored']:.4f}, analytic: direct {direct.mean():.4f} + ground bounce {bounce.mean():.4f}; "
          f"relative RMS lamp vs map "
          f"{rel_rms(y['lamp'], y['map']):.3f}, mirrored vs map {rel_rms(y['mirrored'], y['map']):.3f}; "
          f"correlation with the analytic: map {np.corrcoef(y['map'], direct + bounce)[0, 1]:.3f}, "
          f"lamp {np.corrcoef(y['lamp'], direct + bounce)[0, 1]:.3f}")
    assert means["lamp"] == pytest.approx(means["map"], rel=0.05)
    assert rel_rms(y["lamp"], y["map"]) < 0.10
    assert rel_rms(y["mirrored"], y["map"]) > 0.3
    for name in ("map", "lamp"):
        assert np.corrcoef(y[name], direct + bounce)[0, 1] > 0.95
        assert means[name] == pytest.approx(float((direct + bounce).mean()), rel=0.05)


def test_the_lamp_casts_a_sharper_shadow_than_a_small_sun_in_the_map(capsys):
    """A 1-pixel sun on a 128x64 map is 2.8 deg across; the Environment Texture's bilinear
    interpolation spreads it over the neighbouring pixels, the Sun lamp made from it is a
    uniform 2.8 deg disc."""
    hdr = sun_map(64, 3.0)
    found = sun_mod.extract_sun(hdr)
    assert found.sun is not None, found.reason
    lamp = relight.Lamp.from_sun(found.sun)
    by_map = relight.render(hdr, None, width=160, samples=16)
    by_lamp = relight.render(found.without_sun, lamp, width=160, samples=16)
    towards = relight.map_direction_to_blender(lamp.direction)
    edge_map, edge_lamp = stage.shadow_edge(by_map, towards), stage.shadow_edge(by_lamp, towards)
    print(f"lamp {lamp.angle_deg:.2f} deg across; shadow edge: map {edge_map}, lamp {edge_lamp}")
    assert edge_map.sphere == edge_lamp.sphere == "diffuse"
    assert edge_lamp.width_px < 0.85 * edge_map.width_px
    # the same light in total
    assert stage.sphere_mean(by_lamp) == pytest.approx(stage.sphere_mean(by_map), rel=0.05)


def test_the_worlds_turn_and_strength_move_the_map_and_the_lamp_together():
    """Set World Lighting's Mapping rotation turns the map by -rotation about Z (a map feature moves
    to a larger azimuth: to the right on the map); the preview turns its lamp with it and scales
    both by the World strength. Measured: relative RMS 0 between the turned and the rolled map (a
    quarter turn lands pixels on pixels), 1.3 % between the lamp and the map, 76 % between the
    turned and the unturned map."""
    turn = math.radians(90.0)
    hdr = sun_map(64, 3.0, diameter_deg=3.0, sky=0.0)
    lamp = relight.Lamp(tuple(_direction(*SUN)), 3.0, (1.0, 1.0, 1.0), 3.0)
    kw = dict(width=64, samples=16)
    turned = relight.render(hdr, None, rotation=turn, **kw)
    rolled = relight.render(np.roll(hdr, hdr.shape[1] // 4, axis=1), None, **kw)  # 90 deg to the right
    still = relight.render(hdr, None, **kw)
    lamp_turned = relight.render(None, lamp, rotation=turn, strength=2.0, **kw)
    mask = stage.interior_mask(stage.DIFFUSE, *turned.shape[:2])

    def rel_rms(a, b):
        a, b = stage.luminance(a)[mask], stage.luminance(b)[mask]
        return float(np.sqrt(np.mean((a - b) ** 2)) / np.mean(b))

    errors = {"rolled": rel_rms(rolled, turned), "lamp / 2": rel_rms(lamp_turned / 2.0, turned),
              "unturned": rel_rms(still, turned)}
    print({k: round(v, 3) for k, v in errors.items()})
    assert errors["rolled"] < 0.10 and errors["lamp / 2"] < 0.10
    assert errors["unturned"] > 0.3


@pytest.mark.parametrize("case", ["missing", "ldr", "not_2to1"])
def test_bad_input_gives_one_error_line_and_no_output(case, tmp_path, capfd):
    if case == "missing":
        path, reason = tmp_path / "absent.exr", "no such file"
    elif case == "ldr":
        path, reason = tmp_path / "photo.png", "not an HDR map"
        io.write_png(path, np.full((32, 64, 3), 0.5, np.float32))
    else:
        path, reason = tmp_path / "square.exr", "64x64 is not 2:1"
        io.write_exr(path, np.ones((64, 64, 3), np.float32))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc = cli.main(["relight", str(path), "-o", str(out_dir / "preview.png"), "--size", "32", "--samples", "1"])
    err = capfd.readouterr().err
    assert rc != 0
    assert err.count("\n") == 1 and err.startswith("ldr2hdr: error: ") and str(path) in err and reason in err, err
    assert list(out_dir.iterdir()) == []
