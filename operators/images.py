"""Blender images <-> numpy arrays, and the result images the operators own.

Arrays follow the inference contract: float32 ``HxWx3``, top-down rows. Blender stores
rows bottom-up, RGBA, so every crossing flips and drops or adds alpha. Pixel access uses
``foreach_get``/``foreach_set`` (``pixels[:]`` takes seconds on a panorama).
"""

import os

import bpy
import numpy as np

from ..inference.errors import Ldr2HdrError, UnsupportedImageError

LINEAR_COLORSPACE = "Linear Rec.709"
DATA_COLORSPACE = "Non-Color"

#: Custom properties that mark an image as an ldr2hdr result, so a re-run finds it.
TAG_STEP = "ldr2hdr_step"
TAG_SOURCE = "ldr2hdr_source"

#: File formats Blender decodes to float buffers: their pixels are linear, not code values.
FLOAT_FILE_FORMATS = {"OPEN_EXR", "OPEN_EXR_MULTILAYER", "HDR"}


def named_image(name):
    """The image datablock called ``name``.

    Raises:
        Ldr2HdrError: this file has no image of that name.
    """
    image = bpy.data.images.get(name)
    if image is None:
        raise Ldr2HdrError(f"no image named {name!r} in this file")
    return image


def image_pixels(image):
    """The pixel values of a Blender image as float32 ``HxWx3``, top-down.

    Byte images give their stored code values in [0, 1] (no colour management), which is
    what the inverse camera curve expects.

    Raises:
        UnsupportedImageError: the image has no pixels (missing or unreadable file).
    """
    if not image.has_data:
        _load(image)
    width, height = image.size[:]
    if width == 0 or height == 0 or not image.has_data:
        raise UnsupportedImageError("has no pixels (the file is missing or not an image)", _describe(image))
    channels = image.channels
    buffer = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(buffer)
    rgba = buffer.reshape(height, width, channels)[::-1]
    if channels >= 3:
        rgb = rgba[..., :3]
    else:
        rgb = np.repeat(rgba[..., :1], 3, axis=-1)
    return np.ascontiguousarray(rgb, dtype=np.float32)


def _load(image):
    # size is 0 until Blender decodes the file; touching pixels loads it.
    try:
        image.pixels[0]
    except (IndexError, RuntimeError):
        return False
    return image.has_data


def _describe(image):
    path = image.filepath_from_user() if image.filepath else ""
    return f"{image.name} ({path})" if path else image.name


def has_linear_pixels(image):
    """True when Blender holds the image as linear float data (EXR/HDR, float renders)."""
    if image.file_format in FLOAT_FILE_FORMATS:
        return True
    return bool(image.is_float) and image.source != "FILE"


def file_on_disk(image):
    """The absolute path of the unchanged file behind ``image``, or None (packed, edited, generated)."""
    if image.source != "FILE" or image.packed_file is not None or image.is_dirty or not image.filepath:
        return None
    path = os.path.normpath(bpy.path.abspath(image.filepath, library=image.library))
    return path if os.path.isfile(path) else None


def store_image(name, pixels, *, colorspace=LINEAR_COLORSPACE, previous=None, tags=None, float_buffer=True):
    """Write ``pixels`` (float32 ``HxWx3``, top-down) into a packed float image (with
    ``float_buffer=False`` an 8-bit one, for display values such as a preview).

    A new image is filled and packed first; when ``previous`` is given, every user of it
    (nodes, world textures) is moved to the new image, the old one is deleted and the new
    one takes its name. So a re-run leaves one image with the same name and users, and a
    failure leaves ``previous`` untouched. Alpha is 1 (packing keeps float values exactly
    only then). Returns the image.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected HxWx3 pixels, got shape {pixels.shape}")
    height, width = pixels.shape[:2]
    image = bpy.data.images.new(name, width, height, alpha=True, float_buffer=float_buffer)
    try:
        # Before the pixels: changing it afterwards regenerates the buffer to black.
        image.colorspace_settings.name = colorspace
        rgba = np.ones((height, width, 4), dtype=np.float32)
        rgba[..., :3] = pixels[::-1]
        image.pixels.foreach_set(rgba.ravel())
        image.pack()
        for key, value in (tags or {}).items():
            image[key] = value
    except BaseException:
        bpy.data.images.remove(image)
        raise
    if previous is not None and previous != image:
        old_name = previous.name
        previous.user_remap(image)
        bpy.data.images.remove(previous)
        image.name = old_name
    return image


def find_result_image(step, source_key):
    """The image an earlier run of ``step`` on ``source_key`` produced, or None."""
    for image in bpy.data.images:
        if image.get(TAG_STEP) == step and image.get(TAG_SOURCE) == source_key:
            return image
    return None


def curve_pixels(inverse_crf):
    """An inverse CRF ``(3, 1024)`` as a one-row image ``1x1024x3`` (x = pixel value, value = linear)."""
    curves = np.asarray(inverse_crf, dtype=np.float32)
    return np.ascontiguousarray(curves.T[None])


def load_image_file(filepath):
    """A Blender image for ``filepath`` (reusing one already loaded).

    Raises:
        UnsupportedImageError: missing file or not decodable by Blender.
    """
    path = os.path.abspath(bpy.path.abspath(filepath))
    if not os.path.isfile(path):
        raise UnsupportedImageError("no such file", path)
    existing = {image.name for image in bpy.data.images}
    try:
        image = bpy.data.images.load(path, check_existing=True)
    except RuntimeError as exc:
        raise UnsupportedImageError(f"Blender cannot read it: {' '.join(str(exc).split())}", path) from None
    if image.size[0] == 0 and not _load(image):
        if image.name not in existing:
            bpy.data.images.remove(image)
        raise UnsupportedImageError("not an image Blender can read", path)
    return image
