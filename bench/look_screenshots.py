"""Shop-the-look screenshots of the web page on real photos, in headless Debian chromium.

    python bench/look_screenshots.py SERVING_DIR PHOTO [PHOTO ...] [--out docs]

Serves SERVING_DIR with the server's own loader (params.yaml: look.mode auto, so MoveNet + SSD run), uploads
each photo, presses "Shop the look", clicks the first region and saves docs/screenshot_look_<name>.png (the page
section with the boxes and that region's results, palette-quantised to stay small). Photos are read, never copied.
"""
from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def serve(serving_dir: Path) -> tuple[str, object]:
    import httpx
    import uvicorn

    from serving.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(serving_dir, watch_interval_s=0), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return url, server
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def shoot(page, url: str, photo: Path, out: Path) -> str:
    from PIL import Image

    page.goto(url + "/")
    page.set_input_files("#image-input", str(photo))
    page.click("#look-btn")
    page.wait_for_function("document.querySelector('#status').textContent.match(/region 1 of|No products|failed/)",
                           timeout=60_000)
    status = page.inner_text("#status")
    page.wait_for_timeout(800)      # result thumbnails
    top = page.locator("#look").bounding_box()
    grid = page.locator("#results").bounding_box() or top
    clip = {"x": 0, "y": top["y"] - 40, "width": 1100, "height": min(grid["y"] + 330, 1400) - top["y"] + 40}
    page.screenshot(path=str(out), clip=clip)
    Image.open(out).convert("RGB").quantize(colors=128).save(out, optimize=True)
    return status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("serving_dir", type=Path)
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    url, server = serve(args.serving_dir)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 1000}, bypass_csp=True)   # for wait_for_function
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        for photo in args.photos:
            out = args.out / f"screenshot_look_{photo.stem}.png"
            status = shoot(page, url, photo, out)
            print(photo.name, "->", out.name, f"{out.stat().st_size // 1024} KB:", status)
        browser.close()
    server.should_exit = True
    print("page errors:", errors)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
