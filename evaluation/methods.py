"""The methods the harness can score: a registry of plain callables, and the baselines.

A method is ``fn(ldr HxWx3 in [0, 1], info) -> (hdr HxWx3 linear, inverse_crf or None)``;
``ldr2hdr-classical`` and ``ldr2hdr-learned`` run :func:`ldr2hdr.inference.pipeline.run`,
the others are the published baselines the README's tables compare against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..inference.errors import Ldr2HdrError
from . import synth


MethodFn = Callable[[np.ndarray, dict], tuple[np.ndarray, object]]


@dataclass(frozen=True)
class MethodSpec:
    """A method the harness can run.

    Attributes:
        name: registry key (also the row label in reports).
        fn: ``fn(ldr, info) -> (hdr, inverse_crf)``; ``ldr`` float32 HxWx3 in [0, 1];
            ``info`` = ``{"panorama": bool, "codec": str, "bits": 8}``; ``hdr`` HxWx3 linear
            (any global scale); ``inverse_crf`` (1024,) / (C, 1024) / ``InverseCRF`` or None.
        description: one line for reports.
        check: optional callable raising ``ImportError`` / ``Ldr2HdrError`` when the
            method cannot run here (e.g. missing weights); the harness then skips it.
    """

    name: str
    fn: MethodFn
    description: str = ""
    check: Callable[[], object] | None = None


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, fn: MethodFn, *, description: str = "", check: Callable[[], object] | None = None,
                    replace: bool = False) -> None:
    """Add a method to the registry (``replace=True`` to overwrite an existing name)."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"method {name!r} is already registered")
    _REGISTRY[name] = MethodSpec(name, fn, description, check)


def available_methods() -> list[str]:
    """Registered method names, in registration order."""
    return list(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """Look up a registered method; raises :class:`Ldr2HdrError` for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise Ldr2HdrError(f"unknown evaluation method {name!r}; known: {', '.join(_REGISTRY)}") from None


def _srgb_clip(ldr: np.ndarray, info: dict):
    curve = synth.srgb_decode(synth.GRID)
    return synth.srgb_decode(ldr).astype(np.float32), curve


def _gamma22(ldr: np.ndarray, info: dict):
    return np.power(np.asarray(ldr, dtype=np.float32), 2.2), synth.GRID ** 2.2


def _masia(ldr: np.ndarray, info: dict):
    from ..inference.highlights import classical

    linear, curve = _gamma22(ldr, info)
    return classical.expand_masia(linear, ldr), curve


def _kovaleski(ldr: np.ndarray, info: dict):
    from ..inference.highlights import classical

    linear, curve = _gamma22(ldr, info)
    return classical.expand_kovaleski_oliveira(linear, ldr, wrap=bool(info.get("panorama"))), curve


#: ``budget-const``'s log2 ratio of clipped to unclipped energy: the median over the training
#: split's simulated photos (``python training/train_energy.py``: 1,360 photos of the 85
#: training references, 0.5-15 % clipped; it prints the value and records it in the
#: manifest as ``budget_const_log2_ratio``). Never fitted on evaluation references.
BUDGET_CONST_LOG2 = 0.9502


def _budget_const(ldr: np.ndarray, info: dict):
    """sRGB decode, then fill the clipped pixels (largest channel at the top code) with one
    luminance so that they hold ``2**BUDGET_CONST_LOG2`` times the energy of the rest (pixel
    solid angles on panoramas), each keeping its own colour: the one-number rule a learned
    energy estimate has to beat."""
    from ..inference.highlights.sources import clipped_pixels, pixel_solid_angle
    from .metrics import luminance

    linear = synth.srgb_decode(ldr)
    h, w = linear.shape[:2]
    weights = pixel_solid_angle(h, w, bool(info.get("panorama")))
    clipped = clipped_pixels(ldr)  # the same pixels the energy step calls clipped
    y = luminance(linear)
    if clipped.any() and (~clipped).any():
        level = 2.0 ** BUDGET_CONST_LOG2 * float(np.sum(weights[~clipped] * y[~clipped])) / float(np.sum(weights[clipped]))
        gain = level / np.maximum(y[clipped], 1e-6)
        linear[clipped] = linear[clipped] * gain[:, None]
    return linear.astype(np.float32), synth.srgb_decode(synth.GRID)


def _pipeline_method(method: str, energy: str = "auto", crf: str = "auto",
                     crf_trust: str = "auto") -> tuple[MethodFn, Callable[[], object]]:
    def check():
        from ..inference import pipeline

        return pipeline.Settings(method=method)

    def run(ldr: np.ndarray, info: dict):
        from ..inference import pipeline

        settings = pipeline.Settings(method=method, panorama="on" if info.get("panorama") else "off",
                                     weights_dir=str(info.get("weights_dir") or ""), energy=energy, crf=crf,
                                     crf_trust=crf_trust)
        result = pipeline.run(ldr, settings)
        return result.hdr, result.inverse_crf

    return run, check


register_method("srgb-clip", _srgb_clip, description="inverse sRGB only, highlights stay clipped")
register_method("gamma2.2", _gamma22, description="inverse gamma 2.2 only")
register_method("masia2017", _masia, description="gamma 2.2 + Masia et al. 2017 gamma expansion")
register_method("kovaleski2014", _kovaleski, description="gamma 2.2 + Kovaleski & Oliveira 2014 expand map")
_fn, _check = _pipeline_method("classical")
register_method("ldr2hdr-classical", _fn, description="ldr2hdr pipeline, method=classical", check=_check)
_fn, _check = _pipeline_method("learned")
register_method("ldr2hdr-learned", _fn, description="ldr2hdr pipeline, method=learned", check=_check)
_fn, _check = _pipeline_method("learned", energy="off")
register_method("ldr2hdr-learned-network-only", _fn, check=_check,
                description="ldr2hdr pipeline, method=learned, energy=off (the highlight network's own energy)")
_fn, _check = _pipeline_method("learned", crf="srgb")
register_method("ldr2hdr-learned-srgb-curve", _fn, check=_check,
                description="ldr2hdr pipeline, method=learned, crf=srgb (the sRGB curve assumed instead of estimated)")
_fn, _check = _pipeline_method("learned", crf_trust="network")
register_method("ldr2hdr-learned-camera", _fn, check=_check,
                description="ldr2hdr pipeline, method=learned, as for a photo whose EXIF names a camera (the "
                            "network's curve, not blended with sRGB)")
register_method("budget-const", _budget_const,
                description="sRGB decode + clipped pixels filled to 2**c x the unclipped energy (c from training)")
del _fn, _check


def _unavailable_reason(spec: MethodSpec) -> str | None:
    if spec.check is None:
        return None
    try:
        spec.check()
    except (ImportError, Ldr2HdrError) as exc:
        return str(exc)
    return None
