"""diffusio studio: the HTTP API on a real loopback server, and the pages in headless Chromium."""

import base64
import io
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

uvicorn = pytest.importorskip("uvicorn")
from diffusio.studio import Limits, create_app  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    config = uvicorn.Config(create_app(Limits(max_n=16, max_steps=50, max_trials=500)), host="127.0.0.1",
                            port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def post(url, body, raw=False):
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def png(b64) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def b64png(pixels) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_generate_matches_the_python_api(server, shipped):
    code, data = post(f"{server}/v1/generate", {"prompt": "a bag", "n": 3, "steps": 6, "seed": 2})
    assert code == 200 and len(data["images"]) == 3 and data["nfe"] == 6
    assert np.array_equal(np.stack([png(b) for b in data["images"]]),
                          shipped.generate("a bag", n=3, steps=6, seed=2))
    assert png(data["grid"]).ndim == 2


@pytest.mark.parametrize("body,code,message", [
    ({"prompt": "a bag", "n": 1000}, 400, "over this server's limit of 16"),
    ({"prompt": "a bag", "steps": 500}, 400, "limit of 50"),
    ({"prompt": "a bag", "n": "many"}, 422, "n:"),
    ({"prompt": "a bag", "size": 3}, 422, "size"),
    ({"prompt": "a bag", "model": "../etc/passwd"}, 422, "model"),
    ({"prompt": "a bag", "model": "nope"}, 400, "unknown model"),
    ({"prompt": "a bag", "sampler": "magic"}, 400, "unknown sampler"),
    ({"prompt": "a bag", "sampler": ""}, 400, "unknown sampler"),  # was a 200 with the default (probe, seed 2027)
])
def test_bad_generate_requests_get_4xx_with_a_message(server, body, code, message):
    got, data = post(f"{server}/v1/generate", body)
    assert got == code and message in data["detail"]


def test_malformed_json_is_a_422(server):
    code, data = post(f"{server}/v1/generate", b"{not json", raw=True)
    assert code == 422 and data["detail"]


def test_inpaint_keeps_the_unmasked_pixels(server, shipped):
    image = shipped.generate("a t-shirt", n=1, steps=6, seed=0)[0]
    mask = np.zeros((28, 28), np.uint8)
    mask[14:] = 255
    code, data = post(f"{server}/v1/inpaint", {"image": b64png(image), "mask": "data:image/png;base64," + b64png(mask),
                                               "steps": 5})
    assert code == 200
    out = png(data["image"])
    assert np.array_equal(out[:14], image[:14]) and data["nfe"] == 20  # the context classifier names the class
    code, data = post(f"{server}/v1/inpaint", {"image": b64png(image), "mask": b64png(mask), "steps": 3, "recon": 30})
    assert code == 200 and data["nfe"] == 3 and np.array_equal(png(data["image"])[:14], image[:14])
    bad = [({"image": b64png(image), "mask": b64png(np.zeros((10, 10), np.uint8))}, "must match"),
           ({"image": b64png(image), "mask": b64png(np.zeros((28, 28), np.uint8))}, "mask is empty"),
           ({"image": "bm90IGFuIGltYWdl", "mask": b64png(mask)}, "not a PNG or JPEG"),
           ({"image": b64png(np.zeros((40, 40), np.uint8)), "mask": b64png(mask)}, "28x28")]
    code, data = post(f"{server}/v1/inpaint", {"image": b64png(image), "mask": b64png(mask), "recon": -1})
    assert code == 422 and "recon" in json.dumps(data)
    for body, message in bad:
        code, data = post(f"{server}/v1/inpaint", body)
        assert code == 400 and message in data["detail"], data


def test_spread_simulate_builtin_and_uploaded_graph(server):
    code, data = post(f"{server}/v1/spread/simulate", {"graph": "karate", "model": "sir",
                                                       "params": {"beta": 0.2, "gamma": 0.1}, "seeds": [0],
                                                       "trials": 50})
    assert code == 200 and data["nodes"] == 34 and data["states"] == ["S", "I", "R"]
    assert png(data["curve"]).shape[0] > 100 and "final_states" in data
    assert data["summary"]["S_mean"][0] == 33 and data["summary"]["I_mean"][0] == 1
    code, data = post(f"{server}/v1/spread/simulate", {"edges": "a,b\nb,c\nc,d\n", "model": "ic",
                                                       "params": {"p": 1.0}, "seeds": ["a"], "trials": 5})
    assert code == 200 and data["nodes"] == 4 and data["summary"]["active_mean"][-1] == 4
    for body, message in [({"model": "sir", "params": {"beta": -1, "gamma": 0.1}}, "beta"),
                          ({"model": "ic", "params": {"beta": 0.1}}, "does not apply"),
                          ({"model": "sir", "trials": 10 ** 6}, "limit of 500"),
                          ({"model": "sir", "graph": "atlantis"}, "atlantis"),
                          ({"model": "flu"}, "unknown model"),
                          ({"model": "sir", "graph": "nope", "edges": "0,1\n"}, "not both")]:  # probe, seed 2028
        code, data = post(f"{server}/v1/spread/simulate", body)
        assert code == 400 and message in data["detail"], data


def test_openapi_schema_lists_the_api(server):
    with urllib.request.urlopen(f"{server}/openapi.json") as r:
        paths = json.loads(r.read())["paths"]
    assert {"/v1/generate", "/v1/inpaint", "/v1/spread/simulate"} <= set(paths)


# ---------------------------------------------------------------- in a real browser
@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/system-deps.sh installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def wait_for_image(driver, element_id, timeout=120):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.find_elements(By.ID, element_id) or d.find_element(By.ID, "error").text)
    error = driver.find_element(By.ID, "error").text
    assert not error, error
    return driver.execute_script(f"const i = document.getElementById('{element_id}');"
                                 "return i.complete ? i.naturalWidth : 0;")


@pytest.mark.browser
def test_browser_generate_page(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("a pair of jeans")
    browser.find_element(By.ID, "steps").send_keys("6")
    browser.find_element(By.ID, "go").click()
    assert wait_for_image(browser, "grid") > 100  # 8 images of 28 px, scaled 4x: the PNG decoded


@pytest.mark.browser
def test_browser_spread_page(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/spread")
    trials = browser.find_element(By.ID, "trials")
    trials.clear()
    trials.send_keys("50")
    browser.find_element(By.ID, "go").click()
    assert wait_for_image(browser, "curve") > 200
    assert browser.execute_script("return document.getElementById('final').naturalWidth") > 200


@pytest.mark.browser
def test_browser_inpaint_page(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/inpaint")
    browser.find_element(By.XPATH, "//button[text()='use a generated sample']").click()
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return image !== null"))
    canvas = browser.find_element(By.ID, "canvas")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
    ActionChains(browser).move_to_element_with_offset(canvas, 0, 60).click_and_hold() \
        .move_by_offset(60, 0).move_by_offset(-120, 0).release().perform()
    steps = browser.find_element(By.ID, "steps")
    steps.clear()
    steps.send_keys("5")
    browser.find_element(By.ID, "go").click()
    assert wait_for_image(browser, "result") == 28


def test_a_timed_out_request_stops_its_work_and_busy_servers_say_429():
    """Issue 26.2: a 503 used to leave the sampling running for minutes; now the work stops too."""
    from fastapi.testclient import TestClient

    app = create_app(Limits(max_n=64, max_steps=1000, request_seconds=1.0, max_running=1))
    busy = {"prompt": "a bag", "n": 64, "steps": 1000, "sampler": "heun"}
    with TestClient(app) as client:
        start = time.time()
        reply = client.post("/v1/generate", json=busy)
        assert reply.status_code == 503 and "longer than 1 s" in reply.json()["detail"]
        # the slot frees once the work has really stopped: within a few steps of the deadline
        for _ in range(100):
            reply = client.post("/v1/generate", json={"prompt": "a bag", "n": 1, "steps": 2})
            if reply.status_code != 429:
                break
            time.sleep(0.1)
        assert reply.status_code == 200, reply.json()
        assert time.time() - start < 15


def test_more_requests_than_slots_get_429():
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    app = create_app(Limits(max_n=64, max_steps=1000, request_seconds=3.0, max_running=1))
    with TestClient(app) as client, ThreadPoolExecutor(3) as pool:
        codes = sorted(pool.map(lambda _: client.post("/v1/generate", json={
            "prompt": "a bag", "n": 64, "steps": 200, "sampler": "heun"}).status_code, range(3)))
        for _ in range(100):  # leave only once the work has stopped
            if client.post("/v1/generate", json={"prompt": "a bag", "n": 1, "steps": 1}).status_code != 429:
                break
            time.sleep(0.1)
    assert 429 in codes and set(codes) <= {200, 429, 503}


def test_errors_name_no_temporary_paths_and_killed_servers_leave_no_temp_folders(tmp_path, monkeypatch):
    """Issue 26.8: a bad uploaded edge list answered with the server's temporary path in the message,
    and a server killed mid-request left its temporary folder behind."""
    import subprocess
    import sys
    import tempfile

    from fastapi.testclient import TestClient

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"diffusio-studio-{gone.pid}"  # what a killed server left
    (stale / "tmpabc").mkdir(parents=True)
    (stale / "tmpabc" / "edges.csv").write_text("0,1\n")
    app = create_app(Limits(max_trials=50))
    assert not stale.exists()
    with TestClient(app) as client:
        for edges in ("a,b,c\n1,2,x\n", "\x00\x01\n", "only-one-column\n"):
            reply = client.post("/v1/spread/simulate", json={"edges": edges, "model": "sir", "trials": 5})
            detail = reply.json()["detail"]
            assert reply.status_code == 400 and "the upload" in detail or "edge" in detail, detail
            assert str(tmp_path) not in detail and "diffusio-studio-" not in detail, detail
        reply = client.post("/v1/spread/simulate", json={"edges": "0,1\n1,2\n", "model": "sir", "trials": 5,
                                                         "draw_graph": False})
        assert reply.status_code == 200
    # one folder for this process, empty between requests
    assert [p.name for p in tmp_path.iterdir()] in ([], [f"diffusio-studio-{__import__('os').getpid()}"])
    assert not [list(p.rglob("*")) for p in tmp_path.iterdir() if any(p.iterdir())]
