"""Reporting results: aggregation per method and curve family, markdown tables, JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


#: Metric keys of a result row, with how they are reported (label, unit, better).
METRIC_COLUMNS = {
    "pu21_psnr": ("PU21-PSNR", "dB", "higher"),
    "si_log2_rmse": ("SI log2 RMSE", "stops", "lower"),
    "si_log2_rmse_unclipped": ("SI log2 RMSE unclipped", "stops", "lower"),
    "si_log2_rmse_clipped": ("SI log2 RMSE clipped", "stops", "lower"),
    "clipped_energy_stops": ("clipped energy |err|", "stops", "lower"),
    "clipped_energy_bias_stops": ("clipped energy bias", "stops", "0"),
    "irradiance_rel_error": ("irradiance rel. err (pano)", "", "lower"),
    "sphere_diffuse_rmse": ("diffuse sphere rel. RMSE (pano)", "", "lower"),
    "sphere_diffuse_si_rmse": ("diffuse sphere si-RMSE (pano)", "", "lower"),
    "sphere_glossy_rmse": ("glossy sphere rel. RMSE (pano)", "", "lower"),
    "sphere_glossy_si_rmse": ("glossy sphere si-RMSE (pano)", "", "lower"),
    "crf_rmse": ("CRF RMSE", "", "lower"),
    "seconds": ("time", "s", "lower"),
}
ALIGNMENT_STATEMENT = (
    "Alignment: every prediction is multiplied by one global factor "
    "s = exp(median(log Y_ref - log Y_pred)) over the pixels not clipped in the LDR input "
    "(5 % darkest and brightest reference pixels excluded; Y = Rec.709 luminance); all "
    "metrics use that s. PU21: the reference median luminance is mapped to 50 cd/m^2 (same "
    "factor for the prediction), channels clamped to [0.005, 10000] cd/m^2, peak V(100) = 256.4, "
    "capped at 100 dB. SI log2 RMSE: luminance floored 10 stops below the reference median. "
    "Irradiance: RGB cosine-weighted integrals at 64 Fibonacci normals on 128x64 maps, "
    "mean of |E_pred - E_ref| / |E_ref|. Spheres (panoramas): a white diffuse and a glossy (Phong 50) sphere "
    "seen along -Z, 32 px, lit by the 128x64 map; relative RMSE = RMSE / RMS of the reference render, "
    "si-RMSE the same after the least-squares scale of the prediction's render. Clipped energy: log2 ratio of solid-angle-weighted "
    "(panoramas) luminance sums inside the clip mask (pixels with max channel >= clip level)."
)


def _finite(values) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def aggregate(rows: list[dict], keys: tuple[str, ...]) -> dict:
    """Mean / median / count of every metric per group of ``keys`` (group key joined by ``|``).

    ``nan`` values (not applicable, e.g. irradiance on flat images) are left out of the
    statistics; ``n`` counts the values used; ``samples`` counts the group's rows.
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault("|".join(str(row.get(k)) for k in keys), []).append(row)
    out = {}
    for name, members in groups.items():
        stats = {"samples": len(members), "errors": sum(1 for r in members if r.get("status") != "ok")}
        for metric in METRIC_COLUMNS:
            vals = _finite(r.get(metric) for r in members)
            stats[metric] = {
                "mean": float(vals.mean()) if vals.size else None,
                "median": float(np.median(vals)) if vals.size else None,
                "n": int(vals.size),
            }
        out[name] = stats
    return out


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"


def _table(groups: dict, stat: str, label: str) -> list[str]:
    arrows = {"higher": "↑", "lower": "↓", "0": "→0"}
    head = [label, "n"] + [
        f"{lbl}{' (' + unit + ')' if unit else ''} {arrows[better]}" for lbl, unit, better in METRIC_COLUMNS.values()
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, stats in groups.items():
        cells = [name.replace("|", " / "), str(stats["samples"] - stats["errors"])]
        for metric in METRIC_COLUMNS:
            cells.append(_fmt(stats[metric][stat]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown_report(summary: dict) -> str:
    """The results as markdown: methods as rows, metrics as columns (means, then medians, then per curve family)."""
    cfg = summary["config"]
    refs = summary["references"]
    n_pano = sum(1 for r in refs if r["panorama"])
    lines = [
        "# ldr2hdr evaluation",
        "",
        f"Mode `{cfg['mode']}`: {len(refs)} references ({n_pano} panoramas), max width {cfg['max_width']} px, "
        f"clip fractions {cfg['clip_fractions']}, codecs {cfg['codecs']}, seed {cfg['seed']}. "
        f"Total {summary.get('seconds_total', float('nan')):.0f} s.",
        "",
        "## Means",
        "",
        *_table(summary["summary"]["by_method"], "mean", "method"),
        "",
        "## Medians",
        "",
        *_table(summary["summary"]["by_method"], "median", "method"),
        "",
        "## Means per curve family",
        "",
        *_table(summary["summary"]["by_method_family"], "mean", "method / curves"),
        "",
        "n = samples scored; per-metric counts are in results.json (irradiance only on panoramas, "
        "CRF RMSE only when a method returns a curve). n/a = no applicable sample.",
        "",
        ALIGNMENT_STATEMENT,
    ]
    if summary.get("unavailable_methods"):
        lines += ["", "Unavailable methods: " + "; ".join(
            f"{k} ({v})" for k, v in summary["unavailable_methods"].items())]
    return "\n".join(lines) + "\n"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=1, allow_nan=False), encoding="utf-8")
    tmp.replace(path)
