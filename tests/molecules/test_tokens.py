"""SELFIES tokens: real MOSES molecules survive the round trip; any token string decodes to a valid molecule."""

import numpy as np

from diffusio.molecules import load_moses
from diffusio.molecules.tokens import Vocabulary, canonical


def test_round_trip_on_real_moses_molecules():
    smiles = load_moses("test", limit=300, seed=1)
    vocab = Vocabulary.build(smiles)
    ids, kept = vocab.encode_kept(smiles, length=72)
    assert len(kept) == len(smiles)
    assert vocab.decode(ids) == [canonical(s) for s in smiles]


def test_random_tokens_decode_to_valid_molecules():
    vocab = Vocabulary.build(load_moses("test", limit=300, seed=1))
    ids = np.random.default_rng(0).integers(2, len(vocab), size=(50, 30))
    from rdkit import Chem

    assert all(s and Chem.MolFromSmiles(s) is not None for s in vocab.decode(ids))


def test_too_long_molecules_are_left_out_not_cut():
    vocab = Vocabulary.build(["CCO", "CCCCCCCCCCCCCCCC"])
    ids, kept = vocab.encode_kept(["CCO", "CCCCCCCCCCCCCCCC"], length=5)
    assert kept.tolist() == [0] and vocab.decode(ids) == ["CCO"]
