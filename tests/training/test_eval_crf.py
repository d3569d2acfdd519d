"""training/eval_crf.py: the held-out protocol's photos, at the protocol's or other clip fractions."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
eval_crf = pytest.importorskip("eval_crf")


def test_heldout_photos_follow_the_requested_clip_fraction():
    if not eval_crf.DORF_PATH.is_file():
        pytest.skip("the DoRF curves of ../shared are not here")
    for clips in (eval_crf.CLIP_FRACTIONS, (0.25,)):
        photos = eval_crf.heldout_photos(max_width=256, clips=clips)
        seen = []
        for _, _, _, clip, _, ldr, info in photos:
            seen.append(clip)
            assert abs(float(np.mean(info["clip_mask"])) - clip) < 0.5 * clip, (clip, float(np.mean(info["clip_mask"])))
            if len(seen) == len(clips):
                break
        assert tuple(seen) == tuple(clips)
