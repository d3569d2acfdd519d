"""World lighting from an equirectangular HDR: the node chain behind Set World Lighting.

    Texture Coordinate (Generated) -> Mapping (Z rotation) -> Environment Texture
        -> Background (strength) -> World Output

Built-in shader nodes only, so Cycles and EEVEE both render it. Our nodes carry fixed
names, so running the operator again updates them instead of adding more.

Extract Sun adds a Sun lamp ("ldr2hdr Sun") that stands in for the map's sun; drivers
tie its Z rotation to the Mapping node's rotation and its strength to the Background
strength, so it stays on the map's sun when either changes.
"""

import math

import bpy

from ..inference.imaging import blender_world_direction

WORLD_NAME = "ldr2hdr World"
NODE_NAMES = {
    "coords": "ldr2hdr Coordinates",
    "mapping": "ldr2hdr Mapping",
    "environment": "ldr2hdr Environment",
    "background": "ldr2hdr Background",
    "output": "ldr2hdr World Output",
}


def _ensure_node(nodes, key, idname, location):
    node = nodes.get(NODE_NAMES[key])
    if node is not None and node.bl_idname != idname:
        nodes.remove(node)
        node = None
    if node is None:
        node = nodes.new(idname)
        node.name = NODE_NAMES[key]
        node.location = location
    return node


def ensure_world(scene):
    """The scene's world (a new "ldr2hdr World" when it has none), with nodes enabled."""
    world = scene.world
    if world is None:
        world = bpy.data.worlds.new(WORLD_NAME)
        scene.world = world
    if bpy.app.version < (5, 0, 0) and not world.use_nodes:
        # 5.0 always uses nodes (the flag is deprecated there); 4.x needs it switched on.
        world.use_nodes = True
    return world


def set_environment(scene, image, strength=1.0, rotation=0.0):
    """Light ``scene`` with ``image`` as an equirectangular environment.

    Args:
        scene: the scene whose world is set up (created when missing).
        image: a Blender image, linear float for real light levels.
        strength: Background strength (multiplies the radiance).
        rotation: rotation about the world Z axis, in radians.

    Returns:
        The world.
    """
    world = ensure_world(scene)
    tree = world.node_tree
    nodes, links = tree.nodes, tree.links
    coords = _ensure_node(nodes, "coords", "ShaderNodeTexCoord", (-900, 300))
    mapping = _ensure_node(nodes, "mapping", "ShaderNodeMapping", (-700, 300))
    env = _ensure_node(nodes, "environment", "ShaderNodeTexEnvironment", (-500, 300))
    background = _ensure_node(nodes, "background", "ShaderNodeBackground", (-200, 300))
    output = _ensure_node(nodes, "output", "ShaderNodeOutputWorld", (50, 300))

    mapping.vector_type = "POINT"
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, float(rotation))
    env.image = image
    env.projection = "EQUIRECTANGULAR"
    env.interpolation = "Linear"
    background.inputs["Strength"].default_value = float(strength)

    _link(links, coords.outputs["Generated"], mapping.inputs["Vector"])
    _link(links, mapping.outputs["Vector"], env.inputs["Vector"])
    _link(links, env.outputs["Color"], background.inputs["Color"])
    _link(links, background.outputs["Background"], output.inputs["Surface"])

    # Ours must be the output the renderers use; other World Output nodes stay but idle.
    for node in nodes:
        if node.bl_idname == "ShaderNodeOutputWorld":
            node.is_active_output = node == output
    output.target = "ALL"
    return world


def _link(links, from_socket, to_socket):
    if any(link.from_socket == from_socket for link in to_socket.links):
        return
    for link in list(to_socket.links):
        links.remove(link)
    links.new(from_socket, to_socket)


def environment_node(world):
    """Our Environment Texture node in ``world``, or None."""
    if world is None or world.node_tree is None:
        return None
    return world.node_tree.nodes.get(NODE_NAMES["environment"])


def mapping_node(world):
    """Our Mapping node (its Rotation Z turns the environment) in ``world``, or None."""
    if world is None or world.node_tree is None:
        return None
    return world.node_tree.nodes.get(NODE_NAMES["mapping"])


def background_node(world):
    """Our Background node (its Strength scales the environment) in ``world``, or None."""
    if world is None or world.node_tree is None:
        return None
    return world.node_tree.nodes.get(NODE_NAMES["background"])


def world_transform(world):
    """``(rotation, strength)``: our Mapping node's Rotation Z (radians) and our Background
    node's Strength in ``world``, ``(0, 1)`` where they are missing."""
    mapping, background = mapping_node(world), background_node(world)
    rotation = float(mapping.inputs["Rotation"].default_value[2]) if mapping is not None else 0.0
    strength = float(background.inputs["Strength"].default_value) if background is not None else 1.0
    return rotation, strength


def set_environment_image(scene, image):
    """Show ``image`` through the scene world's environment chain, keeping its strength and
    rotation; a world without our chain gets one (strength 1, rotation 0). Returns the world."""
    world = scene.world
    env = environment_node(world)
    if env is None or mapping_node(world) is None or background_node(world) is None:
        return set_environment(scene, image)
    env.image = image
    return world


# --------------------------------------------------------------------------- sun lamp

SUN_NAME = "ldr2hdr Sun"
#: Custom properties of the sun lamp object. The drivers read the first two, so editing them
#: (or the world's rotation and strength) moves and scales the lamp.
SUN_AZIMUTH = "ldr2hdr_sun_azimuth"        # its Z rotation (radians) at world rotation 0
SUN_IRRADIANCE = "ldr2hdr_sun_irradiance"  # its strength (W/m^2) at world strength 1
SUN_MAP = "ldr2hdr_sun_map"                # the environment image it was taken out of
SUN_RECORD = "ldr2hdr_sun"                 # the measured sun, as JSON (for people and reports)

_ROTATION_PATH = f'node_tree.nodes["{NODE_NAMES["mapping"]}"].inputs["Rotation"].default_value[2]'
_STRENGTH_PATH = f'node_tree.nodes["{NODE_NAMES["background"]}"].inputs["Strength"].default_value'


#: A map direction in Blender world axes at Mapping rotation 0 (one definition, bpy-free).
map_direction_to_world = blender_world_direction


def sun_lamp(scene):
    """The scene's ldr2hdr sun lamp object (found by its tag, whatever its name), or None."""
    for obj in scene.objects:
        if obj.type == "LIGHT" and SUN_AZIMUTH in obj:
            return obj
    return None


def sun_lamp_is_stale(scene):
    """True when the scene has our sun lamp but its World no longer shows the map the sun was taken out of."""
    lamp = sun_lamp(scene)
    if lamp is None:
        return False
    env = environment_node(scene.world)
    return env is None or env.image is None or lamp.get(SUN_MAP) != env.image


def set_sun_lamp(scene, world, direction, irradiance, color, angle, *, map_image=None, record=None):
    """Create or update the scene's Sun lamp that stands in for a sun taken out of ``world``'s map.

    Args:
        scene: the lamp is linked to its master collection (an existing lamp is reused).
        world: the world whose Mapping rotation and Background strength the lamp follows
            (drivers on its Z rotation and its energy).
        direction: unit vector toward the sun in the map's convention (see
            :func:`map_direction_to_world`), at world rotation 0.
        irradiance: irradiance on a surface facing the sun at world strength 1 (the map's
            units; W/m^2 for a map in W m^-2 sr^-1): Blender's Sun strength.
        color: RGB in 0..1 (irradiance per channel / ``irradiance``).
        angle: angular diameter, radians.
        map_image: the environment image the sun was removed from (recorded on the lamp).
        record: a short JSON string describing the sun (recorded on the lamp).

    Returns:
        The lamp object.
    """
    obj = sun_lamp(scene)
    if obj is None:
        light = bpy.data.lights.new(SUN_NAME, "SUN")
        obj = bpy.data.objects.new(SUN_NAME, light)
        scene.collection.objects.link(obj)
        obj.location = (0.0, 0.0, 5.0)  # anywhere works for a sun; above the origin is easy to find
    light = obj.data
    light.type = "SUN"

    # A light shines along its local -Z, so its +Z must point at the sun. With XYZ Euler angles
    # (x = polar angle, y = 0, z = azimuth) the Z rotation is applied last, about the world Z
    # axis: the world's own Z rotation can simply be subtracted from it.
    dx, dy, dz = map_direction_to_world(direction)
    polar = math.acos(max(-1.0, min(1.0, dz)))
    azimuth = math.atan2(dx, -dy)
    rotation, strength = world_transform(world)

    obj[SUN_AZIMUTH] = azimuth
    obj[SUN_IRRADIANCE] = float(irradiance)
    if map_image is not None:
        obj[SUN_MAP] = map_image
    if record is not None:
        obj[SUN_RECORD] = record
    obj.rotation_mode = "XYZ"
    # The values the drivers will compute, so they hold before the depsgraph evaluates.
    obj.rotation_euler = (polar, 0.0, azimuth - rotation)
    light.energy = float(irradiance) * strength
    light.color = tuple(float(c) for c in color)
    light.angle = float(angle)

    # The Mapping node turns the texture lookup by +rotation, so the map (and its sun) turns
    # by -rotation about Z.
    _drive(obj, "rotation_euler", 2, "azimuth - rotation",
           (("azimuth", "OBJECT", obj, f'["{SUN_AZIMUTH}"]'), ("rotation", "WORLD", world, _ROTATION_PATH)))
    _drive(light, "energy", -1, "irradiance * strength",
           (("irradiance", "OBJECT", obj, f'["{SUN_IRRADIANCE}"]'), ("strength", "WORLD", world, _STRENGTH_PATH)))
    return obj


def remove_sun_lamp(scene):
    """Delete the scene's ldr2hdr sun lamp (object and, when unused elsewhere, its light); True if one was there."""
    obj = sun_lamp(scene)
    if obj is None:
        return False
    light = obj.data
    bpy.data.objects.remove(obj)
    if light.users == 0:
        bpy.data.lights.remove(light)
    return True


def _drive(owner, data_path, index, expression, variables):
    """Replace any driver of ``owner.data_path[index]`` by ``expression`` over single-property
    ``variables`` ``(name, id_type, id, path)``. Only names and + - * are used, so Blender's
    simple-expression evaluator runs it without Python (no auto-run permission needed)."""
    owner.driver_remove(data_path, index)
    fcurve = owner.driver_add(data_path, index)
    driver = fcurve.driver
    driver.type = "SCRIPTED"
    for name, id_type, target_id, path in variables:
        var = driver.variables.new()
        var.name = name
        var.type = "SINGLE_PROP"
        var.targets[0].id_type = id_type
        var.targets[0].id = target_id
        var.targets[0].data_path = path
    driver.expression = expression
    return fcurve
