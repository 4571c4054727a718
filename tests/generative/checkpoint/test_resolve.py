"""A folder named like a shipped model does not silently shadow it."""

import pytest

from diffusio.generative.checkpoint.models import WEIGHTS_DIR, resolve_model_dir


def test_bare_name_is_the_shipped_model_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fashion").mkdir()
    with pytest.warns(UserWarning, match=r"write ./fashion"):
        assert resolve_model_dir("fashion") == WEIGHTS_DIR / "fashion"
    assert resolve_model_dir("./fashion").resolve() == (tmp_path / "fashion").resolve()
