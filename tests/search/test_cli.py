"""``diffusio search index | query``: the round trip, incremental indexing, and one-line errors."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from diffusio.cli.main import main


@pytest.mark.slow  # two indexing runs and three queries through the CLI: ~10 s on 2 loaded cores
def test_cli_round_trip(collection, tmp_path, capsys):
    folder, classes = collection
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted(folder.glob("*.png"))[:30]:
        shutil.copy(p, photos / p.name)
    index = tmp_path / "photos.index"
    assert main(["search", "index", str(photos), "-o", str(index), "--bank", "4", "--quiet"]) == 0
    assert "embedded 30 new image(s)" in capsys.readouterr().out
    for p in sorted(folder.glob("*.png"))[30:]:
        shutil.copy(p, photos / p.name)
    assert main(["search", "index", str(photos), "-o", str(index), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "embedded 10 new image(s)" in out and "30 already indexed" in out and "40 in" in out

    hits = tmp_path / "hits.png"
    assert main(["search", "query", str(index), "a pair of trousers", "-k", "5", "--rerank", "8", "-o", str(hits)]) == 0
    out = capsys.readouterr().out
    assert "5 hit(s)" in out and "picture in" in out
    picture = np.asarray(Image.open(hits))
    assert picture.ndim == 2 and picture.shape[1] >= 5 * 84

    assert main(["search", "query", str(index), "a pair of trousers", "-k", "3", "--rerank", "6", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [classes[h["path"].rsplit("/", 1)[-1][:2]] for h in data["hits"]][0] == "Trouser"
    assert data["reranked"] == 3

    assert main(["search", "query", str(index), "--image", str(photos / "12.png"), "-k", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "image" and data["hits"][0]["path"].endswith("12.png")


def test_cli_errors_are_one_line(collection, tmp_path, capsys):
    folder, _ = collection
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["search", "index", str(empty), "-o", str(tmp_path / "x.index")]) == 2
    assert "no images in" in capsys.readouterr().err
    assert main(["search", "query", str(tmp_path / "missing.index"), "a bag"]) == 2
    assert "no index" in capsys.readouterr().err
    index = tmp_path / "one.index"
    photos = tmp_path / "one"
    photos.mkdir()
    shutil.copy(folder / "00.png", photos / "00.png")
    assert main(["search", "index", str(photos), "-o", str(index), "--bank", "4", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["search", "query", str(index), "a bag", "-k", "0"]) == 2
    assert "-k must be a positive integer" in capsys.readouterr().err
    assert main(["search", "query", str(index), "a bag", "--image", str(photos / "00.png")]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["search", "query", str(index), "a bag", "-o", str(tmp_path / "hits.gif")]) == 2
    assert "must end in" in capsys.readouterr().err
    query = photos / "00.png"
    before = query.read_bytes()
    assert main(["search", "query", str(index), "--image", str(query), "-o", str(query)]) == 2  # -o is the query
    assert "is also an input" in capsys.readouterr().err and query.read_bytes() == before
