"""The studio's Search page and its JSON endpoint over a served index."""

import base64

import pytest

pytest.importorskip("fastapi")


def test_search_endpoint_by_text_and_example(built, collection, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from diffusio.studio import Limits, create_app

    path = built.save(tmp_path / "served.index")
    with TestClient(create_app(Limits())) as client:
        assert client.post("/v1/search", json={"text": "a bag"}).status_code == 400  # no index served yet
        monkeypatch.setenv("DIFFUSIO_SEARCH_INDEX", str(path))
        answer = client.post("/v1/search", json={"text": "a pair of trousers", "k": 3})
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert len(data["hits"]) == 3 == len(data["thumbnails"]) and data["reranked"] == 3
        assert collection[1][data["hits"][0]["path"].rsplit("/", 1)[-1][:2]] == "Trouser"
        example = base64.b64encode((collection[0] / "05.png").read_bytes()).decode()
        data = client.post("/v1/search", json={"image": "data:image/png;base64," + example, "k": 2}).json()
        assert data["kind"] == "image" and data["hits"][0]["path"].endswith("05.png")
        assert client.post("/v1/search", json={"text": "a bag", "k": 0}).status_code == 422
        assert "not both" in client.post("/v1/search", json={"text": "a", "image": example}).json()["detail"]
        assert "Search" in client.get("/search").text
