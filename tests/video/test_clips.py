"""Moving Fashion-MNIST: motion labels right by construction, seeds, captions, errors."""

import numpy as np
import pytest

from diffusio.errors import UsageError
from diffusio.video.clips import (HELD_OUT_PHRASES, MOTION_PHRASES, MOTIONS, caption_for, centroids, motion_of,
                                  moving_clips, still_frames)


def test_every_motion_label_matches_the_centroid_path():
    data = moving_clips(300, seed=3)
    seen = [motion_of(centroids(c)) for c in data.clips]
    assert seen == [m[0] for m in data.motions]
    assert set(seen) == set(MOTIONS)  # all six occur in 300 clips


def test_same_seed_same_bytes_other_seed_other_clips():
    a, b, c = moving_clips(5, seed=1), moving_clips(5, seed=1), moving_clips(5, seed=2)
    assert np.array_equal(a.clips, b.clips) and a.captions == b.captions
    assert not np.array_equal(a.clips, c.clips)


def test_captions_name_the_object_and_the_motion():
    data = moving_clips(50, seed=0)
    for caption, motion in zip(data.captions, data.motions):
        assert any(phrase in caption for phrase in MOTION_PHRASES[motion[0]]), caption
    held = moving_clips(50, seed=0, phrases="held-out")
    for caption, motion in zip(held.captions, held.motions):
        assert any(phrase in caption for phrase in HELD_OUT_PHRASES[motion[0]])
        assert not any(phrase in caption for phrases in MOTION_PHRASES.values() for phrase in phrases
                       if phrase not in " ".join(HELD_OUT_PHRASES[motion[0]]))


def test_held_out_phrases_never_appear_in_training_phrases():
    train = {p for ps in MOTION_PHRASES.values() for p in ps}
    assert not train & {p for ps in HELD_OUT_PHRASES.values() for p in ps}


def test_two_objects_and_digits():
    data = moving_clips(4, objects=2, seed=0)
    assert data.classes.shape == (4, 2) and data.paths.shape == (4, 2, 16, 2)
    assert all(" while " in c for c in data.captions)
    digits = moving_clips(3, source="mnist5k", seed=0)
    assert all(("digit" in c) or ("number" in c) or ("handwritten" in c) for c in digits.captions)


def test_paths_stay_on_the_canvas_and_bounces_turn():
    data = moving_clips(200, seed=5, size=40, object_size=16, frames=12)
    assert data.paths.min() >= 0 and data.paths.max() <= 40 - 16
    assert data.clips.shape == (200, 12, 40, 40, 1)


def test_motion_of_reads_simple_paths():
    assert motion_of(np.array([[0, 3], [0, 6], [0, 9]])) == "down"
    assert motion_of(np.array([[0, 0], [1, 0], [0, 0]])) == "still"
    assert motion_of(np.array([[np.nan, 0], [1, 0]])) == "lost"


def test_still_frames_are_single_captioned_frames():
    frames, captions, classes = still_frames(6, seed=0)
    assert frames.shape == (6, 1, 32, 32, 1) and len(captions) == 6 and classes.shape == (6,)


def test_caption_for_is_deterministic():
    assert caption_for("Bag", "up", word=1, phrase=2, template=1) == "a video of a purse drifting upwards"


@pytest.mark.parametrize("kwargs, word", [({"objects": 3}, "objects"), ({"object_size": 40}, "object_size"),
                                          ({"source": "cifar"}, "source"), ({"frames": 0}, "frames"),
                                          ({"phrases": "other"}, "phrases")])
def test_bad_arguments_name_the_parameter(kwargs, word):
    with pytest.raises(UsageError, match=word):
        moving_clips(2, **kwargs)
