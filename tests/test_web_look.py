"""Shop the look in headless Debian chromium: boxes drawn on the photo, a click shows that region's results."""
from __future__ import annotations

import copy
import threading
import time

import httpx
import pytest
import uvicorn
from look_fixtures import blank_png, generated_looks
from serving_fixtures import build_serving_dir, tiny_loader
from test_web_page import CHROMIUM, _chromium_or_skip, _free_port

from modules.config import load_params
from serving.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def look_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web_look")
    params = copy.deepcopy(load_params())
    params["look"]["mode"] = "salient"
    app = create_app(build_serving_dir(root), params, loader=tiny_loader, watch_interval_s=0)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url, generated_looks(root, n_looks=3)
    server.should_exit = True
    thread.join(timeout=10)


def test_look_boxes_and_region_results(look_server, tmp_path):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    url, (data, records) = look_server
    outfit = next(r for r in records if r["scene"] == "outfit")
    blank = tmp_path / "wall.png"
    blank.write_bytes(blank_png())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            page.click("#look-btn")                       # no photo yet: a clear message, no request
            assert "Drop a photo" in page.inner_text("#status")

            page.set_input_files("#image-input", str(data / outfit["image_path"]))
            page.click("#look-btn")
            page.wait_for_selector("#look-stage .look-box")
            n = page.locator("#look-stage .look-box").count()
            assert n >= 2 and page.is_visible("#look-photo")
            assert "region 1 of" in page.inner_text("#status")
            assert page.locator("#results .card").count() > 0
            # a box sits inside the photo, where the API put it
            stage, box = page.locator("#look-stage").bounding_box(), page.locator("#look-stage .look-box").first.bounding_box()
            assert stage["x"] - 1 <= box["x"] and box["x"] + box["width"] <= stage["x"] + stage["width"] + 1
            page.locator("#look-stage .look-box").nth(1).click()
            page.wait_for_function("document.querySelector('#status').textContent.includes('region 2 of')")
            assert "active" in page.locator("#look-stage .look-box").nth(1).get_attribute("class")

            page.fill("#query", "red dress")              # a plain search still works and hides the look
            page.click("#search-btn")
            page.wait_for_function("document.querySelector('#status').textContent.includes('+ photo')")
            assert not page.is_visible("#look")

            page.set_input_files("#image-input", str(blank))
            page.click("#look-btn")
            page.wait_for_function("document.querySelector('#status').textContent.includes('No products')")
            assert page.locator("#look-stage .look-box").count() == 0
            assert not errors, errors
        finally:
            browser.close()
