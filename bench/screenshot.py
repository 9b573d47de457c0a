"""Screenshot of a running server's web page in headless Debian chromium: python bench/screenshot.py [URL] [DATA] [OUT]."""
import glob
import sys

from playwright.sync_api import sync_playwright

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/"
OUT = sys.argv[3] if len(sys.argv) > 3 else "docs/screenshot_demo.png"
photo = sorted(glob.glob((sys.argv[2] if len(sys.argv) > 2 else "data") + "/images/queries/*"))[0]
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
    # the server's CSP (no eval) would block Playwright's string predicates in wait_for_function
    page = b.new_page(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(URL)
    page.fill("#query", "minimalist white sneakers")
    page.click("#search-btn")
    page.wait_for_selector("#results .card")
    print("text:", page.locator("#results .card .title").all_inner_texts()[:5])
    page.set_input_files("#image-input", photo)
    page.fill("#query", "")
    page.click("#search-btn")
    page.wait_for_function("document.querySelector('#status').textContent.includes('your photo')")
    page.wait_for_function("(() => { const i = document.querySelector('#results .card img'); return i && i.complete && i.naturalWidth > 0; })()", timeout=20000)
    print("photo", photo, "->", page.locator("#results .card .title").all_inner_texts()[:5])
    page.fill("#user-id", "u_00001")
    page.click("#rec-form button")
    page.wait_for_selector("#recs .card")
    print("recs:", page.inner_text("#rec-status"))
    page.screenshot(path=OUT, full_page=True)
    b.close()
print("errors:", errors)
sys.exit(1 if errors else 0)
