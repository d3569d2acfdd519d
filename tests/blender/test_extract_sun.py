"""Extract Sun: the World's map loses its sun to a Sun lamp that lights the scene as the sun did.

The maps are made here: a dim sky gradient plus a uniform disc 2 deg across (the core takes
suns up to 3 deg) at a known direction, 1024x512 so the disc spans about six pixels.

The render test is what ties the map's direction convention to Blender's: a diffuse sphere
lit (a) by a World that holds only the sun disc and (b) by a black World plus the extracted
lamp must look the same, pixel by pixel, and (b) must match the irradiance the lamp's
strength promises (strength = W/m^2 on a surface facing it).
"""

import math
import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import io  # noqa: E402
from ldr2hdr.inference.imaging import equirect_directions  # noqa: E402
from ldr2hdr.inference.lighting.sun import extract_sun  # noqa: E402
from ldr2hdr.nodes import world as world_nodes  # noqa: E402
from ldr2hdr.operators import extract_sun as sun_step  # noqa: E402
from ldr2hdr.operators import images  # noqa: E402

from .operator_helpers import diffuse_sphere_scene  # noqa: E402

H, W = 512, 1024
SUN_ELEVATION, SUN_AZIMUTH = math.radians(35.0), math.radians(40.0)  # azimuth 0 = the image centre
SUN_RADIUS_DEG = 1.0
SUN_RADIANCE = np.array([800.0, 700.0, 600.0])
ALBEDO = 0.8
RENDER_SIZE = 32
ORTHO_SCALE = 2.1
SAMPLES = 32


def _sun_vector():
    """The sun's direction in the map's convention (``equirect_directions``)."""
    e, a = SUN_ELEVATION, SUN_AZIMUTH
    return np.array([math.cos(e) * math.sin(a), math.sin(e), -math.cos(e) * math.cos(a)])


def _disc():
    directions = equirect_directions(H, W)
    inside = np.degrees(np.arccos(np.clip(directions @ _sun_vector(), -1.0, 1.0))) < SUN_RADIUS_DEG
    disc = np.zeros((H, W, 3), np.float32)
    disc[inside] = SUN_RADIANCE
    return disc


def _sky():
    up = np.clip(equirect_directions(H, W)[..., 1], 0.0, 1.0)
    return ((0.05 + 0.1 * up)[..., None] * np.array([0.6, 0.8, 1.0])).astype(np.float32)


SUNNY = _sky() + _disc()


def _overcast():
    # A bright, broad zenith: lots of light, no compact source.
    up = np.clip(equirect_directions(H, W)[..., 1], 0.0, 1.0)
    return np.repeat((0.2 + 3.0 * up ** 2)[..., None], 3, axis=-1).astype(np.float32)


def _our_lamps():
    return [obj for obj in bpy.data.objects if world_nodes.SUN_AZIMUTH in obj]


def _sunless_images():
    return sorted(i.name for i in bpy.data.images if i.get(images.TAG_STEP) == sun_step.STEP)


def _env_image():
    return world_nodes.environment_node(bpy.context.scene.world).image


def _lamp_axis(lamp):
    """Where the lamp's light comes from (its local +Z) in world axes, after the drivers ran."""
    bpy.context.view_layer.update()
    return np.array(lamp.matrix_world.to_3x3().col[2])


def _rotate_z(vector, angle):
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = vector
    return np.array([c * x - s * y, s * x + c * y, z])


@pytest.fixture
def sunny_world(addon):
    image = images.store_image("sky", SUNNY)
    assert bpy.ops.ldr2hdr.set_world_lighting(image=image.name, strength=2.0, rotation=0.3) == {"FINISHED"}
    return image


def test_lamp_and_sunless_map_match_the_core(sunny_world):
    core = extract_sun(SUNNY)
    assert core.sun is not None, core.reason
    assert bpy.ops.ldr2hdr.extract_sun() == {"FINISHED"}

    (lamp,) = _our_lamps()
    assert lamp.name == world_nodes.SUN_NAME and lamp.data.type == "SUN"
    assert lamp.name in bpy.context.scene.collection.objects
    assert lamp.data.energy == pytest.approx(core.sun.strength * 2.0, rel=1e-5)  # world strength 2
    assert tuple(lamp.data.color) == pytest.approx(core.sun.color, abs=1e-6)
    assert lamp.data.angle == pytest.approx(math.radians(core.sun.angle_deg), rel=1e-5)
    expected = _rotate_z(world_nodes.map_direction_to_world(core.sun.direction), -0.3)
    assert _lamp_axis(lamp) == pytest.approx(expected, abs=1e-5)

    sunless = _env_image()
    assert sunless.name == "sky (no sun)" and sunless.packed_file is not None and sunless.is_float
    assert sunless.colorspace_settings.name == images.LINEAR_COLORSPACE
    np.testing.assert_array_equal(images.image_pixels(sunless), core.without_sun)
    assert lamp[world_nodes.SUN_MAP] == sunless
    # The original is no longer shown, but the sunless map keeps it (and a user, so it is saved).
    assert sunless[sun_step.SOURCE_IMAGE] == sunny_world and sunny_world.users >= 1
    mapping = world_nodes.mapping_node(bpy.context.scene.world)
    assert mapping.inputs["Rotation"].default_value[2] == pytest.approx(0.3)  # kept
    assert world_nodes.background_node(bpy.context.scene.world).inputs["Strength"].default_value == 2.0


def test_rerun_updates_the_same_lamp_and_never_removes_the_sun_twice(sunny_world):
    assert bpy.ops.ldr2hdr.extract_sun() == {"FINISHED"}
    first = images.image_pixels(_env_image())
    (lamp,) = _our_lamps()
    energy = lamp.data.energy
    # Again from the World (which now shows the sunless map), then naming either image.
    for kwargs in ({}, {"image": "sky (no sun)"}, {"image": "sky"}):
        assert bpy.ops.ldr2hdr.extract_sun(**kwargs) == {"FINISHED"}
        assert _our_lamps() == [lamp]
        assert _sunless_images() == ["sky (no sun)"]
        assert _env_image().name == "sky (no sun)"
        np.testing.assert_array_equal(images.image_pixels(_env_image()), first)
        assert lamp.data.energy == pytest.approx(energy)
        assert len(lamp.animation_data.drivers) == 1 and len(lamp.data.animation_data.drivers) == 1


def test_world_rotation_and_strength_drive_the_lamp(sunny_world):
    assert bpy.ops.ldr2hdr.extract_sun() == {"FINISHED"}
    (lamp,) = _our_lamps()
    scene_world = bpy.context.scene.world
    axis = _lamp_axis(lamp)
    energy = lamp.data.energy
    for fcurve in (*lamp.animation_data.drivers, *lamp.data.animation_data.drivers):
        # No Python: works with auto-run of scripts disabled.
        assert fcurve.driver.is_valid and fcurve.driver.is_simple_expression

    world_nodes.mapping_node(scene_world).inputs["Rotation"].default_value[2] = 0.3 + 1.2
    world_nodes.background_node(scene_world).inputs["Strength"].default_value = 0.5
    # The map turns by -rotation (the Mapping node turns the lookup by +rotation): so does the lamp.
    assert _lamp_axis(lamp) == pytest.approx(_rotate_z(axis, -1.2), abs=1e-5)
    assert lamp.data.energy == pytest.approx(energy / 4.0, rel=1e-5)

    # set_world_lighting moves the same node, so the lamp follows it too.
    assert bpy.ops.ldr2hdr.set_world_lighting(image="sky (no sun)", strength=2.0, rotation=0.3) == {"FINISHED"}
    assert _lamp_axis(lamp) == pytest.approx(axis, abs=1e-5)
    assert lamp.data.energy == pytest.approx(energy, rel=1e-5)


def test_undo_removes_the_lamp_and_restores_the_map(sunny_world):
    # In background mode Blender has no undo stack until a step is pushed explicitly, and
    # bpy.ops calls push none unless asked (third positional argument); then undo and redo
    # work as in the UI.
    bpy.ops.ed.undo_push(message="before Extract Sun")
    assert bpy.ops.ldr2hdr.extract_sun("EXEC_DEFAULT", True) == {"FINISHED"}
    assert len(_our_lamps()) == 1 and _env_image().name == "sky (no sun)"

    assert bpy.ops.ed.undo() == {"FINISHED"}
    assert _our_lamps() == []
    assert _env_image().name == "sky"
    assert _sunless_images() == []
    np.testing.assert_array_equal(images.image_pixels(_env_image()), SUNNY)

    assert bpy.ops.ed.redo() == {"FINISHED"}
    assert len(_our_lamps()) == 1 and _env_image().name == "sky (no sun)"


def test_survives_save_and_reload(sunny_world, tmp_path):
    assert bpy.ops.ldr2hdr.extract_sun() == {"FINISHED"}
    sunless = images.image_pixels(_env_image())
    path = tmp_path / "sun.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))

    # Both maps are packed, and the original is kept although no node shows it.
    np.testing.assert_array_equal(images.image_pixels(_env_image()), sunless)
    np.testing.assert_array_equal(images.image_pixels(bpy.data.images["sky"]), SUNNY)
    (lamp,) = _our_lamps()
    axis = _lamp_axis(lamp)
    world_nodes.mapping_node(bpy.context.scene.world).inputs["Rotation"].default_value[2] += 0.5
    assert _lamp_axis(lamp) == pytest.approx(_rotate_z(axis, -0.5), abs=1e-5)  # the drivers came along
    assert bpy.ops.ldr2hdr.extract_sun() == {"FINISHED"}
    assert _our_lamps() == [lamp] and _sunless_images() == ["sky (no sun)"]
    np.testing.assert_array_equal(images.image_pixels(_env_image()), sunless)


def test_registers_without_torch(tmp_path):
    """The core's helpers import torch, which Blender's Python usually lacks: the operator must
    import it only when it runs, so the add-on still registers."""
    script = tmp_path / "no_torch.py"
    script.write_text(
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "import bpy\n"
        "import addon_utils\n"
        "def _raise(exc):\n"
        "    raise exc\n"
        "addon_utils.enable('ldr2hdr', default_set=True, handle_error=_raise)\n"
        "print('extract_sun registered:', 'extract_sun' in dir(bpy.ops.ldr2hdr))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "extract_sun registered: True" in done.stdout


def test_map_without_a_sun_changes_nothing(addon, capfd):
    overcast = images.store_image("overcast", _overcast())
    assert extract_sun(_overcast()).sun is None
    assert bpy.ops.ldr2hdr.set_world_lighting(image=overcast.name) == {"FINISHED"}
    capfd.readouterr()
    before = sorted(i.name for i in bpy.data.images), len(bpy.data.objects)

    assert bpy.ops.ldr2hdr.extract_sun() == {"CANCELLED"}
    assert "no sun; nothing changed" in capfd.readouterr().out  # the reason, as a warning
    assert (sorted(i.name for i in bpy.data.images), len(bpy.data.objects)) == before
    assert _env_image() == overcast and _our_lamps() == []


def test_set_world_lighting_option(addon, capfd):
    sky = images.store_image("sky", SUNNY)
    overcast = images.store_image("overcast", _overcast())
    assert bpy.ops.ldr2hdr.set_world_lighting(image=sky.name, rotation=0.3, extract_sun=True) == {"FINISHED"}
    (lamp,) = _our_lamps()
    assert _env_image().name == "sky (no sun)"
    assert lamp.data.energy == pytest.approx(extract_sun(SUNNY).sun.strength, rel=1e-5)

    # Without the option the lamp stays, with a warning that it adds a sun the World no longer lacks.
    capfd.readouterr()
    assert bpy.ops.ldr2hdr.set_world_lighting(image=sky.name) == {"FINISHED"}
    assert "still adds the sun taken out of sky (no sun)" in capfd.readouterr().out
    assert len(_our_lamps()) == 1

    # A map without a sun: the lamp of the previous one goes.
    assert bpy.ops.ldr2hdr.set_world_lighting(image=overcast.name, extract_sun=True) == {"FINISHED"}
    assert "removed the Sun lamp of the previous map" in capfd.readouterr().out
    assert _our_lamps() == [] and _env_image() == overcast


def test_errors_change_nothing(addon):
    with pytest.raises(RuntimeError, match="no ldr2hdr environment image"):
        bpy.ops.ldr2hdr.extract_sun()
    with pytest.raises(RuntimeError, match="no image named"):
        bpy.ops.ldr2hdr.extract_sun(image="missing")
    images.store_image("square", np.ones((64, 64, 3), np.float32))
    with pytest.raises(RuntimeError, match="not 2:1"):
        bpy.ops.ldr2hdr.extract_sun(image="square")
    with pytest.raises(RuntimeError, match="not 2:1"):
        bpy.ops.ldr2hdr.set_world_lighting(image="square", extract_sun=True)
    assert bpy.context.scene.world is None or world_nodes.environment_node(bpy.context.scene.world) is None
    assert _our_lamps() == [] and _sunless_images() == []


# --------------------------------------------------------------------------- render check

def _render_setup(scene):
    """A diffuse sphere (albedo 0.8, radius 1) seen by an orthographic camera along +Y; our lamp stays."""
    # Adaptive sampling stops early on pixels whose first samples miss a small sun, and the
    # world's importance map must resolve the 6 px disc, or Cycles finds the sun mostly by
    # chance (means off by +-10 % at 256 samples with the 1024 px map of a 1024 px image).
    diffuse_sphere_scene(scene, segments=(64, 32), samples=SAMPLES, size=RENDER_SIZE, camera_distance=5.0,
                         ortho_scale=ORTHO_SCALE, adaptive_sampling=False, map_resolution=2 * W, albedo=ALBEDO,
                         keep=lambda obj: world_nodes.SUN_AZIMUTH in obj)


def _sphere_normals():
    """Unit normals ``HxWx3`` of the sphere at each pixel centre (zero off the sphere)."""
    centres = (np.arange(RENDER_SIZE) + 0.5) / RENDER_SIZE * ORTHO_SCALE - ORTHO_SCALE / 2
    x, z = np.meshgrid(centres, -centres)
    y = -np.sqrt(np.clip(1.0 - x ** 2 - z ** 2, 0.0, None))
    return np.stack([x, y, z], axis=-1)


def _render(scene, path):
    bpy.ops.render.render()
    bpy.data.images["Render Result"].save_render(str(path), scene=scene)
    loaded = io.read_image(path)
    return loaded.pixels, loaded.alpha


@pytest.mark.parametrize("turn", [0.0, 2.0])
def test_lamp_lights_the_scene_as_the_sun_did(addon, tmp_path, turn):
    """(a) the sun disc alone as the World vs (b) a black World + the lamp, the World turned by
    ``turn`` after the extraction (so the driver has to move the lamp)."""
    scene = bpy.context.scene
    images.store_image("sky", SUNNY)
    disc = images.store_image("disc", _disc())
    black = images.store_image("black", np.zeros((8, 16, 3), np.float32))
    assert bpy.ops.ldr2hdr.set_world_lighting(image="sky") == {"FINISHED"}
    assert bpy.ops.ldr2hdr.extract_sun() == {"FINISHED"}
    (lamp,) = _our_lamps()
    world_nodes.mapping_node(scene.world).inputs["Rotation"].default_value[2] = turn
    _render_setup(scene)
    env = world_nodes.environment_node(scene.world)

    env.image, lamp.hide_render = disc, True
    sun_world, alpha = _render(scene, tmp_path / "sun_world.exr")
    env.image, lamp.hide_render = black, False
    sun_lamp, _ = _render(scene, tmp_path / "sun_lamp.exr")

    normals = _sphere_normals()
    cosine = normals @ _lamp_axis(lamp)
    sphere = alpha > 0.99
    lit, away = sphere & (cosine > 0.3), sphere & (cosine < -0.1)
    assert lit.sum() > 200 and away.sum() > 50  # both sides of the sphere are in view
    # Lambert: radiance = albedo / pi * E * cos, with E = strength x colour per channel.
    expected = ALBEDO / math.pi * lamp.data.energy * np.maximum(cosine, 0.0)[..., None] * np.array(lamp.data.color)
    mean_world, mean_lamp, mean_expected = sun_world[lit].mean(), sun_lamp[lit].mean(), expected[lit].mean()
    per_pixel = np.abs(sun_lamp[lit].mean(-1) / sun_world[lit].mean(-1) - 1.0)
    print(f"turn {turn}: lit mean world {mean_world:.5f}, lamp {mean_lamp:.5f}, Lambert {mean_expected:.5f}; "
          f"per-pixel |lamp/world - 1| median {np.median(per_pixel):.3f} max {per_pixel.max():.3f}; "
          f"facing away max world {sun_world[away].max():.2e} lamp {sun_lamp[away].max():.2e}")
    assert mean_lamp == pytest.approx(mean_world, rel=0.03)
    assert mean_lamp == pytest.approx(mean_expected, rel=0.02)  # strength is irradiance (W/m^2)
    assert np.median(per_pixel) < 0.05  # the same pattern: the lamp comes from where the sun was
    assert sun_world[away].max() < 1e-3 * mean_world and sun_lamp[away].max() < 1e-3 * mean_lamp
