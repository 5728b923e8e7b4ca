"""The web console with 100 real servers: first paint of the server list in headless Chromium
(navigation start to the frame after the list was built, `performance.mark` in web/app.js) and the
bytes the page load transferred (the page, its script and style, the API's answer), against the
same run's floor: the API's own answer time for GET /api/v1/servers as the page's resource timing
saw it.

Run: bench/console.sh (ROUNDS, default 10)."""
import os
import shutil
import statistics
import time
import sys

from benchlib import BenchStack

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "integration"))
from selenium import webdriver  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "10"))
SERVERS = int(os.environ.get("SERVERS", "100"))


def browser():
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--ignore-certificate-errors", "--disable-extensions", "--no-first-run"]:
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))


def main():
    with BenchStack(port_range="43000-43999") as stack:
        settings = {"SERVER_NAME": "Bench", "PASSWORD": "pw"}
        for i in range(SERVERS):
            stack.session.put(f"{stack.base}/api/v1/server/create/peontest.{stack.run}c{i}", json=settings, timeout=120).raise_for_status()
        servers = stack.session.get(f"{stack.base}/api/v1/servers").json()
        running = sum(1 for s in servers if s["container_state"] == "running")
        driver = browser()
        try:
            driver.get(stack.base + "/")
            driver.execute_script("sessionStorage.setItem('peon.key', arguments[0]); sessionStorage.setItem('peon.scope', 'admin');", stack.key)
            paints, transfers, api = [], [], []
            for i in range(ROUNDS + 1):  # the first load warms the browser's own caches (fonts, the process)
                driver.get(f"{stack.base}/?load={i}#/servers")  # a new document each time, not a hash change
                painted = None
                for _ in range(3000):
                    painted = driver.execute_script("const m = performance.getEntriesByName('peon-servers-painted'); return m.length ? m[0].startTime : null;")
                    if painted is not None:
                        break
                    time.sleep(0.01)
                rows = driver.execute_script("return document.querySelectorAll('#server-rows tr').length")
                if painted is None or rows != SERVERS:
                    print(driver.execute_script("return document.body.innerText.slice(0, 500)"), driver.get_log("browser"))
                    raise SystemExit(f"the list did not paint: {painted}, {rows} rows")
                entries = driver.execute_script(
                    "return [performance.getEntriesByType('navigation')[0]].concat(performance.getEntriesByType('resource'))"
                    ".map(e => ({name: e.name, transfer: e.transferSize, start: e.startTime, end: e.responseEnd}))")
                list_call = [e for e in entries if e["name"].endswith("/api/v1/servers")]
                paints.append(painted)
                transfers.append(sum(e["transfer"] for e in entries))
                api.append(list_call[0]["end"] - list_call[0]["start"] if list_call else float("nan"))
            paints, transfers, api = paints[1:], transfers[1:], api[1:]
        finally:
            driver.quit()
        print(f"{SERVERS} servers ({running} running), {ROUNDS} page loads, medians:")
        print("| measure | value |")
        print("|---|---|")
        print(f"| first paint of the server list | {statistics.median(paints):.0f} ms (min {min(paints):.0f}, max {max(paints):.0f}) |")
        print(f"| of which GET /api/v1/servers (the floor) | {statistics.median(api):.0f} ms |")
        print(f"| bytes transferred by the load | {statistics.median(transfers) / 1000:.1f} KB |")


if __name__ == "__main__":
    main()
