"""The README's screenshots of the web page: the real page in Chromium, colorizing the bundled samples.

python scripts/make_web_screenshots.py   # writes docs/web.png (1280 px wide) and docs/web-phone.png (390 px)

Serves the app on 127.0.0.1 with the default model, drops every photo of colorit/samples/ on the page
(the one shown first: SHOWN), waits until all are colorized, pins one point at the colour the model gave
it, and takes a desktop and a phone screenshot. Needs the test extra (Playwright) and Chromium at
/usr/bin/chromium, as the browser tests do (scripts/test.sh installs both).
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, sync_playwright

from colorit.server.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "colorit" / "samples"
SHOWN = "chelsea.jpg"
PIN_AT = (0.66, 0.3)  # where the pin goes, as fractions of the picture's width and height
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
VIEWS = {  # name: (file, viewport, device scale factor)
    "desktop": ("web.png", {"width": 1280, "height": 860}, 1),
    "phone": ("web-phone.png", {"width": 390, "height": 844}, 2),
}
TIMEOUT_MS = 120_000


def serve() -> tuple[uvicorn.Server, threading.Thread, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:  # uvicorn offers no event to wait on
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("make_web_screenshots: the server did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}/"


def colorize_samples(page: Page, url: str) -> None:
    page.goto(url)
    # functions, not expressions: Playwright evaluates an expression with eval, which the page's CSP forbids
    page.wait_for_function("() => document.querySelectorAll('#model-select option').length > 0")
    samples = sorted(SAMPLES.glob("*.jpg"), key=lambda path: (path.name != SHOWN, path.name))
    page.set_input_files("#file-input", [str(path) for path in samples])
    all_done = """() => document.body.dataset.state === 'ready'
        && document.getElementById('queue').dataset.state === 'idle'
        && !document.getElementById('download-all').disabled"""
    page.wait_for_function(all_done, timeout=TIMEOUT_MS)
    box = page.locator("#picture").bounding_box()
    count = int(page.evaluate("() => document.body.dataset.resultCount"))
    page.mouse.click(box["x"] + PIN_AT[0] * box["width"], box["y"] + PIN_AT[1] * box["height"])
    page.wait_for_function(
        "n => Number(document.body.dataset.resultCount) > n && document.body.dataset.state === 'ready'",
        arg=count,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_function(all_done, timeout=TIMEOUT_MS)
    page.locator("#hint-layer .pin").blur()  # the focus ring would hide the pin's colour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNG files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server, thread, url = serve()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name, (filename, viewport, scale) in VIEWS.items():
                phone = name == "phone"
                context = browser.new_context(
                    viewport=viewport, device_scale_factor=scale, is_mobile=phone, has_touch=phone
                )
                page = context.new_page()
                colorize_samples(page, url)
                page.screenshot(path=str(args.out / filename))
                print(args.out / filename)
                context.close()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


if __name__ == "__main__":
    main()
