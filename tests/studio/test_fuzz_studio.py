"""Issue 26, done-when: an end-to-end fuzz over every studio endpoint.

Bodies are a valid request with up to three fields drawn (tests/fuzz_cases/): right values,
wrong types, out-of-range numbers, NaN and infinities, garbage base64 and images, unknown graphs
and models, non-object bodies.  Every answer must be 200 or a 4xx/503 with a one-line ``detail``,
never a 500; an invalid value never gets 200; no answer names a temporary path; each request
ends within the server's time limit plus a margin.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

pytest.importorskip("fastapi")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fuzz_cases  # noqa: E402
from diffusio.studio import Limits, create_app  # noqa: E402

LIMITS = Limits(max_n=2, max_steps=3, max_trials=50, request_seconds=10.0, max_running=2)
MARGIN = 10.0  # seconds beyond the request limit before an answer counts as a hang


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    with TestClient(create_app(LIMITS), raise_server_exceptions=False) as c:
        yield c


def test_every_endpoint_is_fuzzed():
    from fastapi.routing import APIRoute

    routes = {r.path for r in create_app(LIMITS).routes if isinstance(r, APIRoute) and r.path.startswith("/v1/")}
    assert routes == set(fuzz_cases.studio_fields(LIMITS)) | set(fuzz_cases.GET_PATHS)


def check_answer(path, body, valid, status, detail, seconds) -> None:
    assert seconds < LIMITS.request_seconds + MARGIN, f"hang: {seconds:.1f} s for {path} {body!r}"
    assert status in (200, 400, 422, 429, 503), f"{status} for {path} {body!r}: {detail}"
    if valid is False:
        assert status != 200, f"invalid value accepted: {path} {body!r}"
    if status != 200:
        assert isinstance(detail, str) and detail.strip(), f"no message for {path} {body!r}"
        for secret in (tempfile.gettempdir() + "/", "diffusio-studio-", "Traceback"):
            assert secret not in detail, f"the answer reveals {secret!r}: {detail}"


@pytest.mark.slow  # in `make test`, not in the inner loop
@settings(max_examples=20, deadline=None, database=None, derandomize=True,  # the same cases every CI run
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=fuzz_cases.studio_cases(LIMITS))
def test_every_endpoint_answers_cleanly(client, case):
    path, body, valid = case
    start = time.monotonic()
    if path in fuzz_cases.GET_PATHS:
        reply = client.get(path)
    else:
        reply = client.post(path, content=fuzz_cases.json_safe(body), headers={"Content-Type": "application/json"})
    seconds = time.monotonic() - start
    try:
        detail = reply.json().get("detail") if reply.status_code != 200 else None
    except ValueError:
        detail = None
    check_answer(path, body, valid, reply.status_code, detail, seconds)
