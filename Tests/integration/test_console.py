"""Peon's web console in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) against the real stack: log in with a key, create a server from a plan, see it running,
read its live log, send a console line and see the echo, edit a config file and see it on disk,
download a backup, log out; a wrong key and an expired key are shown as such; no console error and
no request outside the page's origin. A screenshot of each page goes to the test's output folder
(`PEON_TEST_OUTPUT`, else the stack's temp dir)."""
import glob
import json
import os
import shutil
import signal
import time
import zipfile
from urllib.parse import urlsplit

import pytest

from conftest import RUN
from test_service import wait_until

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def browser(downloads, width=1280, height=900):
    if not shutil.which("chromedriver"):
        pytest.fail("no chromedriver: run scripts/deps.sh test (Debian's chromium and chromium-driver)")
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                # The stack's own self-signed certificate (made for this run).
                "--ignore-certificate-errors", "--disable-extensions", "--no-first-run"]:
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


class Console:
    def __init__(self, stack, driver, out):
        self.stack, self.driver, self.out = stack, driver, out
        self.wait = WebDriverWait(driver, 30)
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(stack.url("/")))
        self.shots = 0

    def shot(self, name):
        self.shots += 1
        self.driver.save_screenshot(os.path.join(self.out, f"{self.shots:02d}-{name}.png"))

    def find(self, css):
        return self.wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def click(self, css):
        self.wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, css))).click()

    def text_in(self, css, text, seconds=30):
        WebDriverWait(self.driver, seconds).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def login(self, key):
        self.driver.get(self.stack.url("/"))
        field = self.find("#key")
        field.clear()
        field.send_keys(key)
        self.click("#login-form button[type=submit]")

    def problems(self):
        """Console errors, and requests to anything but this origin (or the page's own blobs)."""
        # Chromium aborts requests in flight when the machine's interfaces change (each new game
        # container adds one): ERR_NETWORK_CHANGED is the host's doing; the log stream resumes.
        errors = [e["message"] for e in self.driver.get_log("browser")
                  if e["level"] == "SEVERE" and "net::ERR_NETWORK_CHANGED" not in e["message"]]
        foreign = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                url = message["params"]["request"]["url"]
                if not (url.startswith(self.origin + "/") or url.startswith("data:") or url.startswith("blob:" + self.origin)):
                    foreign.append(url)
        return errors, foreign


def api_workers(stack):
    """The peon-api worker processes of this stack (children of its supervisor)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            parent = os.readlink(f"/proc/{ppid}/exe")
        except (OSError, ValueError, IndexError):
            continue
        if exe.endswith("/peon-api") and parent.endswith("/peon-api") and f"PEON_DATA_DIR={stack.data}".encode() in environ:
            found.append(int(pid))
    return found




@pytest.fixture
def console(stack, tmp_path):
    out = os.environ.get("PEON_TEST_OUTPUT") or os.path.join(stack.dir, "console-screenshots")
    os.makedirs(out, exist_ok=True)
    downloads = str(tmp_path / "downloads")
    os.makedirs(downloads)
    driver = browser(downloads)
    c = Console(stack, driver, out)
    c.downloads = downloads
    yield c
    driver.quit()


def test_the_page_is_static_strict_and_small(stack):
    r = stack.request("GET", "/", key=None)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and r.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in r.text and " style=" not in r.text and "on" + "click=" not in r.text
    total = len(r.content)
    for asset in ["/console/app.js", "/console/app.css"]:
        a = stack.request("GET", asset, key=None)
        assert a.status_code == 200 and "Content-Security-Policy" in a.headers, asset
        total += len(a.content)
        text = a.text.replace("http://www.w3.org/2000/svg", "")  # SVG's namespace name, never fetched
        assert "http://" not in text and "https://" not in text, asset
    assert total < 200_000, total
    # Anything else outside the API stays a JSON 404.
    r = stack.request("GET", "/console/../peon.db", key=None)
    assert r.status_code in (400, 404)
    assert stack.request("GET", "/nothing-here", key=None).json()["code"] == "route.not_found"


def test_wrong_and_expired_keys_are_shown_as_such(stack, console):
    console.login("peon_" + "x" * 40)
    console.text_in("#login-error", "not valid")
    console.shot("wrong-key")
    expiring = stack.request("POST", "/api/v1/keys", json={"scope": "read", "expires_at": int(time.time()) + 2}).json()["key"]
    time.sleep(3)
    console.login(expiring)
    console.text_in("#login-error", "expired")
    console.shot("expired-key")
    assert console.driver.execute_script("return sessionStorage.getItem('peon.key')") is None


def test_a_person_runs_a_server_from_the_console(stack, console):
    uid = f"peontest.{RUN}ui"
    name = uid.split(".")[1]
    home = os.path.join(stack.data, "servers", "peontest", name)
    try:
        console.login(stack.api_key)
        console.find("table.servers")
        console.shot("servers")
        # The key lives in this tab's session storage, never in the URL or a cookie.
        assert stack.api_key not in console.driver.current_url
        assert console.driver.get_cookies() == []

        console.click("a[href='#/create']")
        Select(console.find("#plan")).select_by_value("peontest")
        console.find("#setting-SERVER_NAME")
        console.shot("create")
        # A required setting left empty is marked beside its field, and nothing is sent.
        console.find("#servername").send_keys(name)
        console.click("#create-submit")
        console.text_in("#setting-SERVER_NAME-error", "Required")
        console.text_in("#setting-PASSWORD-error", "Required")
        console.find("#setting-SERVER_NAME").send_keys("From the console")
        console.find("#setting-PASSWORD").send_keys("secret1")
        console.click("#create-submit")
        try:
            WebDriverWait(console.driver, 120).until(EC.url_contains(f"#/server/{uid}"))  # a create under load
        except Exception:
            console.shot("create-failed")
            raise AssertionError(console.driver.execute_script("return document.body.innerText"))
        console.text_in("#server-status", "running", seconds=120)
        console.shot("server")

        # The live log, then a console line and the game's echo.
        console.text_in("#log", "peon test game", seconds=60)
        # The game reads its stdin once it is up: the line goes again until the game answers it.
        for _ in range(20):
            console.find("#console-line").send_keys("hello from chromium")
            console.click(".console button[type=submit]")
            try:
                console.text_in("#console-answer", "peon test game got: hello from chromium", seconds=5)
                break
            except Exception:
                pass
        console.text_in("#console-answer", "peon test game got: hello from chromium", seconds=1)
        console.text_in("#log", "peon test game got: hello from chromium", seconds=30)
        console.shot("log")

        # A config file edited in the browser lands on disk.
        stack.request("PUT", f"/api/v1/server/file/{uid}", params={"path": "config/console.cfg"}, data=b"motd=old\n")
        console.click("#tab-files")
        console.wait.until(EC.element_to_be_clickable((By.XPATH, "//button[text()='config/']"))).click()
        console.wait.until(EC.element_to_be_clickable((By.XPATH, "//button[text()='console.cfg']"))).click()
        editor = console.find("#editor")
        editor.clear()
        editor.send_keys("motd=edited in the browser\n")
        console.shot("files")
        console.click(".files form button[type=submit]")
        deadline = time.time() + 20
        while time.time() < deadline and open(os.path.join(home, "config", "console.cfg")).read() != "motd=edited in the browser\n":
            time.sleep(0.2)
        assert open(os.path.join(home, "config", "console.cfg")).read() == "motd=edited in the browser\n"

        # An upload from the browser lands in the folder shown.
        upload_source = os.path.join(console.downloads, "..", "mod-pack.txt")
        with open(upload_source, "w") as f:
            f.write("a mod\n")
        console.click("#tab-files")
        console.wait.until(EC.element_to_be_clickable((By.XPATH, "//button[text()='user/']"))).click()
        console.find("#upload").send_keys(os.path.abspath(upload_source))
        assert wait_until(lambda: os.path.isfile(os.path.join(home, "user", "mod-pack.txt")), 20, step=0.2)
        assert open(os.path.join(home, "user", "mod-pack.txt")).read() == "a mod\n"
        console.wait.until(EC.element_to_be_clickable((By.XPATH, "//button[text()='mod-pack.txt']")))

        # A backup downloaded as PEON's save zip.
        console.click("#tab-backups")
        console.click("#download-save")
        deadline = time.time() + 90
        zips = []
        while time.time() < deadline and not zips:
            zips = [z for z in glob.glob(os.path.join(console.downloads, "*.zip"))]
            time.sleep(0.3)
        assert zips, os.listdir(console.downloads)
        time.sleep(0.5)
        assert "config/console.cfg" in zipfile.ZipFile(zips[0]).namelist()
        console.shot("backups")

        # A phone-sized screen still shows the list.
        console.driver.set_window_size(390, 844)
        console.click("a[href='#/servers']")
        console.find(f"tr[data-uid='{uid}']")
        console.shot("servers-phone")
        console.driver.set_window_size(1280, 900)

        errors, foreign = console.problems()
        assert errors == [], errors
        assert foreign == [], foreign

        # The live log resumes after a drop: every API worker killed mid-stream (the supervisor
        # starts new ones); a new line reaches the page once, and nothing shown before comes again.
        console.driver.get(stack.url(f"/#/server/{uid}"))
        console.text_in("#log", "peon test game got: hello from chromium")
        shown = console.find("#log").text.count("peon test game got: hello from chromium")
        workers = api_workers(stack)
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: stack.request("PUT", f"/api/v1/server/console/{uid}", json={"command": "after the drop"}).status_code == 200, 30, step=0.2)
        console.text_in("#log", "peon test game got: after the drop", seconds=60)
        log = console.find("#log").text
        assert log.count("peon test game got: after the drop") == 1, log
        assert log.count("peon test game got: hello from chromium") == shown, log
        console.shot("log-resumed")

        console.click("#logout")
        console.find("#login-form")
        assert console.driver.execute_script("return sessionStorage.getItem('peon.key')") is None
        console.shot("logged-out")
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=60)
