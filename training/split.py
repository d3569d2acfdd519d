"""The fixed held-out split: which HDR references are for evaluation only.

Every training script must take its images from :func:`train_files` (or check
:func:`is_eval`) so that no evaluation reference is ever trained on.

* ``/work/shared/data/hdr`` (47 files at first): the names in :data:`EVAL_SPLIT` (14 files, 30 %)
  were evaluation-only, the names in :data:`TRAIN_SPLIT` are for training. The evaluation
  list was picked by hand, not by hash, because a 30 % hash split of so few files left
  out every sunlit panorama; it covers what the tool must handle:
  - outdoor panoramas with a clipped sun: venice_sunset, rooitou_park, hilly_terrain_01
    (``venice_sunset`` must be here anyway: Blender's studio light ``sunset`` is the same
    scene, and the studio lights are evaluation-only);
  - lamps and windows indoors / at night: st_peters_square_night, studio_small_03,
    circus_arena, st_fagans_interior, StageEnvLatLong;
  - soft light (bright sky without a hard sun, forest): aristea_wreck_puresky, forest_slope;
  - perspective photos: Desk (lamp), StillLife, MtTamNorth_RGB, Bonita.
  Training keeps sunlit scenes too (chinese_garden, immenstadter_horn, modern_buildings_2),
  the studios, CandleGlass and the two ``IMG_2601`` renderings of one scene (kept together
  so the same scene is never on both sides).
* The 75 Poly Haven panoramas added on 2026-12-02 (categories from the notes column of
  ``SOURCES.md``) were assigned by hand too, 23 of them (31 %) to evaluation, with every
  category on both sides: suns 9 of 31 (the three ``kloofendal_*`` days together), studios
  5 of 15, night 3 of 8, indoor lamps 2 of 7, overcast 2 of 8, other 2 of 6. Scenes shot
  at one place stay on one side (``palermo_*``, ``kloppenheim_*``, ``wide_street_*``,
  ``peppermint_powerplant*`` and ``christmas_photo_studio_*`` are all training).
  In all: 37 of 122 files (30 %) are evaluation-only.
* Blender's studio lights (``bpy/<version>/datafiles/studiolights/world/*.exr``) are
  always evaluation-only.
* A file name not listed anywhere (data added later) is decided by a stable hash:
  evaluation when ``int(sha256(name)) % 100 < 30``.
* DoRF camera curves: :func:`dorf_split` (numpy ``RandomState(730)`` shuffle of the 201
  curves; the last 10 are test curves, never trained on).

File names are compared by base name (e.g. ``"venice_sunset_1k.hdr"``). This module
imports nothing beyond the standard library and numpy so any script can use it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np

# ../shared beside the checkout (as on developer machines and in CI); LDR2HDR_SHARED overrides.
HDR_ROOT = Path(os.environ.get("LDR2HDR_SHARED", Path(__file__).resolve().parents[1].parent / "shared")) / "data" / "hdr"
HDR_EXTENSIONS = (".exr", ".hdr")
EVAL_FRACTION_PERCENT = 30
DORF_SPLIT_SEED = 730
DORF_TEST_COUNT = 10

EVAL_SPLIT: tuple[str, ...] = (
    # equirect panoramas
    "venice_sunset_1k.hdr",
    "rooitou_park_1k.hdr",
    "hilly_terrain_01_1k.hdr",
    "st_peters_square_night_1k.hdr",
    "studio_small_03_1k.hdr",
    "circus_arena_1k.hdr",
    "st_fagans_interior_1k.hdr",
    "aristea_wreck_puresky_1k.hdr",
    "forest_slope_1k.hdr",
    "StageEnvLatLong.exr",
    # perspective photos
    "Desk.exr",
    "StillLife.exr",
    "MtTamNorth_RGB.exr",
    "Bonita.exr",
    # added 2026-12-02: sun
    "evening_meadow_1k.hdr",
    "industrial_sunset_02_1k.hdr",
    "kloofendal_28d_misty_1k.hdr",
    "kloofendal_43d_clear_1k.hdr",
    "kloofendal_48d_partly_cloudy_puresky_1k.hdr",
    "quarry_02_1k.hdr",
    "rural_asphalt_road_1k.hdr",
    "spruit_sunrise_1k.hdr",
    "syferfontein_18d_clear_puresky_1k.hdr",
    # added 2026-12-02: studio
    "colorful_studio_1k.hdr",
    "cyclorama_hard_light_1k.hdr",
    "photo_studio_01_1k.hdr",
    "studio_small_07_1k.hdr",
    "studio_small_09_1k.hdr",
    # added 2026-12-02: night
    "rogland_clear_night_1k.hdr",
    "shanghai_bund_1k.hdr",
    "vignaioli_night_1k.hdr",
    # added 2026-12-02: indoor lamps
    "comfy_cafe_1k.hdr",
    "fireplace_1k.hdr",
    # added 2026-12-02: overcast
    "skidpan_1k.hdr",
    "spree_bank_1k.hdr",
    # added 2026-12-02: other
    "sunset_fairway_1k.exr",
    "urban_street_01_1k.hdr",
)

#: The training references of the first split (until 2026-12-02): what the shipped camera-curve
#: network was trained on (``eval_crf.py --scenes train-first`` measures it on scenes it has seen).
TRAIN_SPLIT_FIRST: tuple[str, ...] = (
    # equirect panoramas
    "adams_place_bridge_1k.hdr",
    "autoshop_01_1k.hdr",
    "blocky_photo_studio_1k.hdr",
    "brown_photostudio_01_1k.hdr",
    "brown_photostudio_02_1k.hdr",
    "brown_photostudio_07_1k.hdr",
    "chinese_garden_1k.hdr",
    "christmas_photo_studio_07_1k.hdr",
    "dancing_hall_1k.hdr",
    "dikhololo_night_1k.hdr",
    "drachenfels_cellar_1k.hdr",
    "empty_warehouse_01_1k.hdr",
    "immenstadter_horn_1k.hdr",
    "kiara_1_dawn_1k.hdr",
    "lebombo_1k.hdr",
    "modern_buildings_2_1k.hdr",
    "peppermint_powerplant_1k.hdr",
    "phalzer_forest_01_1k.hdr",
    "potsdamer_platz_1k.hdr",
    "rainforest_trail_1k.hdr",
    "sepulchral_chapel_rotunda_1k.hdr",
    "studio_small_05_1k.hdr",
    "vestibule_1k.hdr",
    "KernerEnvLatLong.exr",
    # perspective photos
    "Adjuster.exr",
    "CandleGlass.exr",
    "Cannon.exr",
    "Carrots.exr",
    "CrissyField_RGB.exr",
    "Flowers_RGB.exr",
    "StarField_RGB.exr",
    "IMG_2601_Blend.exr",
    "IMG_2601_LCHab.exr",
)

TRAIN_SPLIT: tuple[str, ...] = TRAIN_SPLIT_FIRST + (
    # added 2026-12-02: indoor-lamps
    "aft_lounge_1k.hdr",
    "artist_workshop_1k.hdr",
    "old_hall_1k.exr",
    "parking_garage_1k.hdr",
    "peppermint_powerplant_2_1k.hdr",
    # added 2026-12-02: night
    "blaubeuren_night_1k.hdr",
    "preller_drive_1k.hdr",
    "rooftop_night_1k.hdr",
    "sandsloot_1k.hdr",
    "satara_night_no_lamps_1k.hdr",
    # added 2026-12-02: other
    "blue_grotto_1k.hdr",
    "cave_wall_1k.hdr",
    "piazza_bologni_1k.hdr",
    "wasteland_clouds_puresky_1k.hdr",
    # added 2026-12-02: overcast
    "dresden_square_1k.hdr",
    "evening_road_01_puresky_1k.hdr",
    "kloppenheim_06_puresky_1k.hdr",
    "palermo_sidewalk_1k.hdr",
    "palermo_square_1k.hdr",
    "roof_garden_1k.hdr",
    # added 2026-12-02: studio
    "blue_photo_studio_1k.hdr",
    "christmas_photo_studio_05_1k.hdr",
    "christmas_photo_studio_06_1k.hdr",
    "neon_photostudio_1k.hdr",
    "photo_studio_loft_hall_512.hdr",
    "studio_small_01_1k.hdr",
    "studio_small_02_1k.hdr",
    "studio_small_04_1k.hdr",
    "studio_small_08_1k.hdr",
    "white_home_studio_1k.hdr",
    # added 2026-12-02: sun
    "autumn_field_puresky_1k.hdr",
    "belfast_farmhouse_1k.hdr",
    "between_bridges_1k.hdr",
    "crystal_falls_1k.hdr",
    "delta_2_1k.exr",
    "drakensberg_solitary_mountain_1k.hdr",
    "dry_cracked_lake_1k.hdr",
    "dry_hay_field_1k.hdr",
    "fouriesburg_mountain_midday_1k.hdr",
    "future_parking_1k.hdr",
    "gamrig_1k.hdr",
    "kloppenheim_02_1k.exr",
    "limpopo_golf_course_1k.hdr",
    "rustig_koppie_puresky_1k.hdr",
    "snowy_field_1k.hdr",
    "studio_garden_1k.hdr",
    "sunflowers_puresky_1k.hdr",
    "ulmer_muenster_1k.exr",
    "umhlanga_sunrise_1k.hdr",
    "versveldpas_1k.exr",
    "wide_street_01_1k.exr",
    "wide_street_02_1k.exr",
)

_EVAL = frozenset(EVAL_SPLIT)
_TRAIN = frozenset(TRAIN_SPLIT)


def _hash_percent(name: str) -> int:
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % 100


def studio_light_dir() -> Path | None:
    """Folder of Blender's studio-light HDRIs inside the installed ``bpy`` wheel (not imported), or None."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    for candidate in sorted(root.glob("*/datafiles/studiolights/world")):
        if candidate.is_dir():
            return candidate
    return None


def studio_light_files() -> list[Path]:
    """Blender's studio-light EXRs (always evaluation-only), sorted; empty if bpy is absent."""
    folder = studio_light_dir()
    return sorted(folder.glob("*.exr")) if folder else []


def is_studio_light(path: str | Path) -> bool:
    """True for a file inside a ``studiolights`` folder (Blender's bundled HDRIs)."""
    return "studiolights" in Path(path).parts


def is_eval(path: str | Path) -> bool:
    """Whether a reference file is evaluation-only (by base name; studio lights always are)."""
    if is_studio_light(path):
        return True
    name = Path(path).name
    if name in _EVAL:
        return True
    if name in _TRAIN:
        return False
    return _hash_percent(name) < EVAL_FRACTION_PERCENT


def is_train(path: str | Path) -> bool:
    """Whether a reference file may be used for training (the complement of :func:`is_eval`)."""
    return not is_eval(path)


def hdr_files(root: str | Path = HDR_ROOT) -> list[Path]:
    """All ``.exr`` / ``.hdr`` files under ``root`` (recursive), sorted; empty if it is missing."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in HDR_EXTENSIONS)


def eval_files(root: str | Path = HDR_ROOT, *, include_studio_lights: bool = True) -> list[Path]:
    """Evaluation references: the eval split under ``root`` plus Blender's studio lights."""
    files = [p for p in hdr_files(root) if is_eval(p)]
    if include_studio_lights:
        files += studio_light_files()
    return files


def train_files(root: str | Path = HDR_ROOT) -> list[Path]:
    """Training references under ``root`` (never an evaluation file)."""
    return [p for p in hdr_files(root) if is_train(p)]


def dorf_split(n: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """DoRF curve indices ``(train, test)``, each sorted: RandomState(730) shuffle, last 10 = test.

    Identical to ``inference.crf.dorf_split``; repeated here so training scripts need only
    this module to know what they must not train on.
    """
    order = np.arange(n)
    np.random.RandomState(DORF_SPLIT_SEED).shuffle(order)
    return np.sort(order[:-DORF_TEST_COUNT]), np.sort(order[-DORF_TEST_COUNT:])
