"""Studio request bodies: a valid base body per endpoint with up to three fields drawn."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from .commands import IMG, SAMPLERS
from .values import images, png


@st.composite
def b64_images(draw) -> tuple[str, bool | None]:
    import base64

    data, valid = draw(images())
    kind = draw(st.sampled_from(["plain", "plain", "data-url", "not-base64", "huge"]))
    text = base64.b64encode(data).decode()
    if kind == "data-url":
        return "data:image/png;base64," + text, valid
    if kind == "not-base64":
        return draw(st.sampled_from(["!!!", "abc", "\u00e9", "", "a" * 5])), False
    if kind == "huge":
        return "A" * (400 * 1024), False
    return text, valid


JSON_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(),
                      st.text(max_size=20), st.lists(st.integers(), max_size=3), st.just({"a": 1}))


def _field(valid, invalid, junk=True):
    options = [valid.map(lambda v: (v, True)), invalid.map(lambda v: (v, False))]
    if junk:
        options.append(JSON_JUNK.map(lambda v: (v, None)))
    return st.one_of(*options)


def studio_fields(limits) -> dict[str, dict]:
    n_ok = st.integers(1, min(2, limits.max_n))
    steps_ok = st.integers(1, min(2, limits.max_steps))
    seed = _field(st.integers(0, 2 ** 31 - 1), st.sampled_from([-1, 2 ** 31, 2 ** 70]))
    model = _field(st.sampled_from(["fashion-fast"]), st.sampled_from(["nope", "../x", "", "a" * 200]))
    gen = {"prompt": _field(st.one_of(st.none(), st.text(max_size=30)), st.just("a" * 301)),
           "label": _field(st.sampled_from(["Bag", "3"]), st.sampled_from(["99", "nope", "-1"])),
           "model": model, "sampler": _field(st.sampled_from(SAMPLERS), st.sampled_from(["magic", ""])),
           "steps": _field(steps_ok, st.sampled_from([0, -1, limits.max_steps + 1, 10 ** 12])),
           "guidance": _field(st.floats(0, 30), st.sampled_from([-1.0, 31.0, float("nan"), float("inf")])),
           "seed": seed, "n": _field(n_ok, st.sampled_from([0, -5, limits.max_n + 1, 10 ** 12])),
           "colour": _field(st.nothing(), st.just(1), junk=False)}
    inp = {"image": b64_images().map(lambda t: t), "mask": b64_images().map(lambda t: t),
           "prompt": gen["prompt"], "model": model, "steps": gen["steps"], "seed": seed,
           "recon": _field(st.floats(0, 50), st.sampled_from([-1.0, 1001.0, float("nan")]))}
    prob = st.floats(0, 1)
    params = st.one_of(
        st.fixed_dictionaries({"beta": prob, "gamma": prob}).map(lambda d: (d, True)),
        st.dictionaries(st.sampled_from(["beta", "gamma", "p", "q", "sigma", "threshold", "dt", "initial_yes", "nope"]),
                        st.one_of(st.floats(), st.sampled_from([1e300, -1.0, 2.0])), max_size=3).map(lambda d: (d, None)),
        st.sampled_from([{"beta": float("nan"), "gamma": 0.1}, {"beta": -1.0, "gamma": 0.1},
                         {"beta": 2.0, "gamma": 0.1}, {"beta": float("inf"), "gamma": 0.1}]).map(lambda d: (d, False)))
    spread = {"graph": _field(st.sampled_from(["karate", "erdos-renyi:n=20,p=0.2"]),
                              st.sampled_from(["nope", "erdos-renyi:n=10.5,p=0.1", "erdos-renyi:n=4000,p=0.5",
                                               "../../etc/passwd", "a" * 101])),
              "edges": _field(st.just("0,1\n1,2\n2,0\n"), st.sampled_from(["", "\x00\xff", "a,b,c,d\n", "x" * 100])),
              "model": _field(st.sampled_from(["sir", "sis", "ic", "sir-ct"]), st.sampled_from(["nope", ""])),
              "params": params,
              "seeds": _field(st.sampled_from([[0], [0, 1], ["0"]]), st.sampled_from([[999], [-1], ["nope"]])),
              "trials": _field(st.integers(1, 20), st.sampled_from([0, -1, limits.max_trials + 1, 10 ** 12])),
              "seed": seed, "max_steps": _field(st.integers(1, 50), st.sampled_from([0, 5001, 10 ** 9])),
              "draw_graph": _field(st.booleans(), st.sampled_from([{"a": 1}]), junk=False)}
    search = {"text": _field(st.one_of(st.none(), st.text(max_size=30)), st.just("a" * 301)),
              "image": b64_images(), "k": _field(st.integers(1, 5), st.sampled_from([0, -1, 201, 10 ** 12])),
              "rerank": _field(st.integers(0, 5), st.sampled_from([-1, 65, 10 ** 12]))}
    return {"/v1/generate": gen, "/v1/inpaint": inp, "/v1/spread/simulate": spread, "/v1/search": search}


GET_PATHS = ("/v1/models", "/v1/graphs")


@st.composite
def studio_cases(draw, limits) -> tuple[str, object, bool | None]:
    """(endpoint, JSON body, valid): a valid base body with up to three fields drawn; sometimes
    a body that is not an object at all, or a GET of the read-only endpoints."""
    fields = studio_fields(limits)
    path = draw(st.sampled_from(sorted(fields) + ["/v1/models", "/v1/graphs"]))
    if path in GET_PATHS:
        return path, None, True
    if draw(st.integers(0, 9)) == 0:
        return path, draw(st.one_of(st.just([]), st.just("x"), st.just(None), st.integers(), st.just(b"\xff{"))), False
    base = {"/v1/generate": {"prompt": "a bag", "n": 1, "steps": 1, "model": "fashion-fast"},
            "/v1/inpaint": {"image": base64_png(IMG), "mask": base64_png(png(np.pad(np.full((14, 28), 255, np.uint8),
                                                                                   ((14, 0), (0, 0))))),
                            "steps": 1, "model": "fashion-fast", "prompt": "a bag"},
            "/v1/spread/simulate": {"graph": "karate", "model": "sir", "params": {"beta": 0.1, "gamma": 0.1},
                                    "trials": 5, "max_steps": 20, "draw_graph": False},
            "/v1/search": {"text": "a bag", "k": 2}}[path]
    body, valid = dict(base), True
    names = draw(st.lists(st.sampled_from(sorted(fields[path])), min_size=1, max_size=3, unique=True))
    for name in names:
        value, ok = draw(fields[path][name])
        body[name] = value
        if ok is False:
            valid = False
        elif ok is None and valid:
            valid = None
    return path, body, valid


def base64_png(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def json_safe(body) -> bytes:
    """JSON text of a body; non-finite floats as NaN/Infinity (what Python clients send)."""
    import json

    if isinstance(body, bytes):
        return body
    return json.dumps(body, allow_nan=True).encode()


def is_finite_json(body) -> bool:
    if isinstance(body, float):
        return math.isfinite(body)
    if isinstance(body, dict):
        return all(is_finite_json(v) for v in body.values())
    if isinstance(body, list):
        return all(is_finite_json(v) for v in body)
    return True
