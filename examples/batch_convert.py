"""Convert a folder of photos to HDR EXRs and build a scene lit by one of them.

Run with Blender in background mode, the ldr2hdr extension enabled:

    blender -b -P examples/batch_convert.py -- PHOTOS_DIR OUT_DIR [--light NAME] [--exposure STOPS]

For every JPEG/PNG/TIFF/WebP in PHOTOS_DIR this writes OUT_DIR/<name>.exr (32-bit float,
linear Rec.709) through ``bpy.ops.ldr2hdr.reconstruct(filepath=...)``, the same code path as
the node editor and the ``ldr2hdr`` command line. It then lights a new scene with the
result named by ``--light`` (default: the first photo) via
``bpy.ops.ldr2hdr.set_world_lighting`` and saves it as OUT_DIR/lit_scene.blend.

A photo that fails is reported and skipped; the exit status is 1 if any failed.
"""

import argparse
import os
import sys

import addon_utils
import bpy

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")


def enable_ldr2hdr():
    """Make sure the extension's operators exist (installed as an extension or as an add-on)."""
    if "reconstruct" in dir(bpy.ops.ldr2hdr):
        return
    candidates = [name for name in bpy.context.preferences.addons.keys() if name.endswith("ldr2hdr")]
    candidates += ["bl_ext.user_default.ldr2hdr", "bl_ext.blender_org.ldr2hdr", "ldr2hdr"]
    for name in candidates:
        try:
            if addon_utils.enable(name, default_set=False) is not None:
                return
        except (ImportError, ModuleNotFoundError):
            continue
    raise SystemExit("batch_convert: the ldr2hdr extension is not installed in this Blender")


def parse_args(argv):
    args = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(prog="blender -b -P batch_convert.py --")
    parser.add_argument("photos", help="folder of photos")
    parser.add_argument("output", help="folder for the EXRs and lit_scene.blend")
    parser.add_argument("--light", help="file name (without folder) of the photo that lights the scene")
    parser.add_argument("--exposure", type=float, default=0.0, help="scale every result by 2**STOPS")
    parser.add_argument("--strength", type=float, default=1.0, help="World background strength")
    return parser.parse_args(args)


def save_exr(image, path, scene):
    """Write a float image as a 32-bit EXR, linear values exactly as stored."""
    settings = scene.render.image_settings
    if bpy.app.version >= (5, 0, 0):
        settings.media_type = "IMAGE"
    settings.file_format = "OPEN_EXR"
    settings.color_depth = "32"
    settings.color_mode = "RGB"
    settings.exr_codec = "ZIP"
    image.save_render(path, scene=scene)


def main(argv):
    args = parse_args(argv)
    enable_ldr2hdr()
    photos = sorted(
        os.path.join(args.photos, name) for name in os.listdir(args.photos)
        if name.lower().endswith(PHOTO_EXTENSIONS) and not name.startswith(".")
    )
    if not photos:
        raise SystemExit(f"batch_convert: no photos in {args.photos}")
    os.makedirs(args.output, exist_ok=True)
    scene = bpy.context.scene
    results, failures = {}, 0
    for path in photos:
        name = os.path.basename(path)
        try:
            bpy.ops.ldr2hdr.reconstruct(filepath=path, exposure=args.exposure)
        except RuntimeError as exc:  # the operator's one-line report
            failures += 1
            print(f"batch_convert: {name}: {' '.join(str(exc).split())}", file=sys.stderr)
            continue
        stem = os.path.splitext(name)[0]
        image = bpy.data.images[f"{stem}_hdr"]
        out = os.path.join(args.output, f"{stem}.exr")
        save_exr(image, out, scene)
        results[name] = image
        print(f"batch_convert: {name} -> {out}")

    if results:
        light = args.light if args.light in results else next(iter(results))
        bpy.ops.ldr2hdr.set_world_lighting(image=results[light].name, strength=args.strength)
        blend = os.path.join(args.output, "lit_scene.blend")
        bpy.ops.wm.save_as_mainfile(filepath=blend)
        print(f"batch_convert: scene lit by {light} -> {blend}")
    return 1 if failures else 0


if __name__ == "__main__":
    code = main(sys.argv)
    if code:
        sys.exit(code)
