"""The MOSES metrics on molecules whose answers can be checked by hand."""

import math

import pytest

from diffusio.errors import UsageError
from diffusio.molecules.metrics import cosine_similarity, fingerprints, internal_diversity, moses_metrics, \
    passes_filters, scaffolds, tanimoto_aggregate
from rdkit import Chem


def mols(*smiles):
    return [Chem.MolFromSmiles(s) for s in smiles]


def test_validity_uniqueness_novelty_by_hand():
    m = moses_metrics(["CCO", "OCC", "c1ccccc1", "C1CC", ""], reference=["CCO"], train={"CCO"}, fcd=False)
    assert m["valid"] == 3 / 5                  # 'C1CC' (unclosed ring) and '' are invalid
    assert m["unique@1000"] == 2 / 3            # CCO and OCC are the same molecule
    assert m["novelty"] == 1 / 2                # of {CCO, benzene}, only benzene is new


def test_tanimoto_and_internal_diversity():
    fp = fingerprints(mols("CCO", "CCO"))
    assert tanimoto_aggregate(fp, fp).tolist() == [1.0, 1.0]
    assert internal_diversity(fp) == 0.0         # identical molecules: no diversity
    two = fingerprints(mols("CCO", "c1ccccc1"))  # no shared Morgan bits
    assert internal_diversity(two) == pytest.approx(0.5)   # pairs (a,a), (b,b) = 1; (a,b), (b,a) = 0


def test_filters_scaffolds_and_cosine():
    assert passes_filters(Chem.MolFromSmiles("CCOc1ccccc1"))
    assert not passes_filters(Chem.MolFromSmiles("CC[N+](C)(C)C"))        # charged
    assert not passes_filters(Chem.MolFromSmiles("CCI"))                   # iodine is not allowed
    assert scaffolds(mols("c1ccc2ccccc2c1CC")) == {"c1ccc2ccccc2c1": 1}  # naphthalene core, 2 rings
    assert scaffolds(mols("c1ccccc1CC")) == {}                             # one ring: below MOSES's minimum
    assert cosine_similarity({"a": 1}, {"a": 3}) == pytest.approx(1.0)
    assert math.isnan(cosine_similarity({}, {"a": 1}))


def test_nothing_valid_is_an_error():
    with pytest.raises(UsageError, match="none of the 2 molecules is valid"):
        moses_metrics(["C1CC", "xyz"], reference=["CCO"], fcd=False)


@pytest.mark.slow
def test_fcd_of_a_set_with_itself_is_near_zero_and_grows_with_difference():
    from diffusio.molecules import load_moses

    ref = load_moses("test", limit=200, seed=0)
    same = moses_metrics(ref, ref, fcd=True)["FCD"]
    small = moses_metrics(["C" * k for k in range(2, 40)] * 5, ref, fcd=True)["FCD"]
    assert same < 0.1 and small > 10     # a set against itself: zero up to sqrtm round-off
