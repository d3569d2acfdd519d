"""Reading and writing image files with OpenImageIO. Never imports bpy.

Everything that touches the file system for pixels lives here, so the rest of the package
only ever sees plain arrays: ``read`` (decoding, EXIF, orientation, EXR metadata),
``write`` (atomic EXR / PNG / JPEG) and ``files`` (supported files, limits, input lists).
Their public names are this package's API (``io.read_image``, ``io.write_exr``, ...).
"""

from .files import DEFAULT_MAX_PIXELS, MAX_CHANNELS, METADATA_PREFIX, SUPPORTED_EXTENSIONS, list_inputs
from .read import ExifInfo, LoadedImage, apply_orientation, probe_image, read_exr_metadata, read_image
from .write import EXR_COMPRESSIONS, HALF_MAX, write_exr, write_exr_bands, write_jpeg, write_png

__all__ = [
    "DEFAULT_MAX_PIXELS", "EXR_COMPRESSIONS", "HALF_MAX", "MAX_CHANNELS", "METADATA_PREFIX", "SUPPORTED_EXTENSIONS",
    "ExifInfo", "LoadedImage", "apply_orientation", "list_inputs", "probe_image", "read_exr_metadata", "read_image",
    "write_exr", "write_exr_bands", "write_jpeg", "write_png",
]
