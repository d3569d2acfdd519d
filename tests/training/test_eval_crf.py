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


def test_scene_sets_never_mix_evaluation_and_training_references():
    if not eval_crf.HDR_ROOT.is_dir():
        pytest.skip("../shared is not here")
    evaluation = eval_crf.scene_files("eval")
    first = eval_crf.scene_files("train-first")
    added = eval_crf.scene_files("train-added")
    assert evaluation and first and added
    assert all(eval_crf.split.is_eval(p) for p in evaluation)
    assert not any(eval_crf.split.is_eval(p) for p in first + added)
    assert {p.name for p in first} <= set(eval_crf.split.TRAIN_SPLIT_FIRST)
    assert not {p.name for p in first} & {p.name for p in added}
    subset = eval_crf.scene_files("train-added", max_scenes=5)
    assert len(subset) == 5 and subset == eval_crf.scene_files("train-added", max_scenes=5)
    assert set(subset) <= set(added)
    with pytest.raises(ValueError):
        eval_crf.scene_files("everything")


def test_the_first_training_split_is_the_start_of_the_training_split():
    split = eval_crf.split
    assert split.TRAIN_SPLIT[: len(split.TRAIN_SPLIT_FIRST)] == split.TRAIN_SPLIT_FIRST
    assert len(split.TRAIN_SPLIT_FIRST) == 33
    assert not set(split.TRAIN_SPLIT_FIRST) & set(split.EVAL_SPLIT)
