"""PEON_HTTP_MODE=serve: the API (and the console) in plain HTTP on the HTTP port, for clients on
this host or a private network (PEON's own web UI and bot talk to their orchestrator this way),
and only there: a listener on every interface or a public address is refused at start."""
import os
import subprocess

import pytest
import requests

from conftest import ROOT


def render(tmp_path, **env):
    full = {**os.environ, "PEON_DATA_DIR": str(tmp_path / "var"), **env}
    out = subprocess.run([os.path.join(ROOT, "scripts", "render-nginx.sh")], env=full, capture_output=True, text=True, timeout=30)
    return out.returncode, out.stderr


def test_serve_answers_the_api_in_plain_http_on_loopback(make_stack):
    s = make_stack(env={"PEON_HTTP_MODE": "serve"})
    base = f"http://127.0.0.1:{s.http_port}"
    r = requests.get(base + "/api/v1/servers", headers={"X-Api-Key": s.api_key}, timeout=10, allow_redirects=False)
    assert r.status_code == 200 and r.json() == [], r.text
    # A PUT keeps its body (no redirect to lose it), errors keep the JSON envelope, and the console is there too.
    r = requests.put(base + "/api/v1/server/description/nosuch.server", json={"description": "x"}, headers={"X-Api-Key": s.api_key},
                     timeout=10, allow_redirects=False)
    assert r.status_code == 404 and r.json()["code"] == "server.not_found", r.text
    assert requests.get(base + "/api/v1/servers", timeout=10).json()["code"] == "auth.missing_key"
    page = requests.get(base + "/", timeout=10)
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    # HTTPS goes on as before.
    assert s.request("GET", "/api/v1/servers").status_code == 200


@pytest.mark.parametrize("bind", ["0.0.0.0", "8.8.8.8", "172.32.0.1", "192.169.0.1", "::", "2001:db8::1"])
def test_serve_is_refused_on_every_interface_or_a_public_address(tmp_path, bind):
    code, err = render(tmp_path, PEON_HTTP_MODE="serve", PEON_HTTP_BIND=bind)
    assert code == 2 and "loopback or private" in err, (code, err)


@pytest.mark.parametrize("bind", ["127.0.0.1", "10.1.2.3", "172.16.0.5", "172.31.255.2", "192.168.1.10"])
def test_serve_is_allowed_on_loopback_and_private_addresses(tmp_path, bind):
    code, err = render(tmp_path, PEON_HTTP_MODE="serve", PEON_HTTP_BIND=bind)
    assert code == 0, err
    conf = open(tmp_path / "var" / "nginx" / "http.conf").read()
    assert f"listen {bind}:" in conf and "api.conf" in conf, conf
    # On an address of its own, the HTTP port on PEON_BIND still redirects everyone else.
    assert ("return 308" in conf) == (bind != os.environ.get("PEON_BIND", "127.0.0.1")), conf
