"""Behind a reverse proxy and on the open network: PEON_TRUSTED_PROXIES (real client addresses for rate
limits, the access log and audit rows; X-Forwarded-For ignored otherwise), HTTP -> HTTPS as a 308 that
keeps a PUT's body, PEON_HTTP_MODE, security headers, TLS 1.2 AEAD suites, certificate reload on SIGHUP."""
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import time

import pytest
import requests

from conftest import ROOT, RUN

LIMITED = {"PEON_RATE_LIMIT": "1", "PEON_RATE_BURST": "1"}


def access_log(stack, last=None):
    """The access log's lines; with `last`, waits (up to 5 s) until a line with that text is there:
    nginx writes a request's line only after the answer has gone out."""
    deadline = time.time() + 5
    while True:
        lines = open(os.path.join(stack.data, "log", "access.log")).read().splitlines()
        if last is None or any(last in line for line in lines) or time.time() > deadline:
            return lines
        time.sleep(0.05)


def get(stack, forwarded):
    """A request of the client `forwarded`, through a proxy on 127.0.0.1: its status."""
    return stack.request("GET", "/api/v1/orchestrator", headers={"X-Forwarded-For": forwarded}).status_code


def exhaust(stack, forwarded):
    """Requests as `forwarded` until its bucket (1 r/s, burst 1) answers 429: their statuses."""
    codes = []
    while 429 not in codes and len(codes) < 10:
        codes.append(get(stack, forwarded))
    return codes


def test_trusted_proxy_gives_each_client_its_own_bucket_and_log_address(make_stack):
    s = make_stack(env={**LIMITED, "PEON_TRUSTED_PROXIES": "127.0.0.1/32, 10.9.0.0/16"})
    codes = exhaust(s, "203.0.113.1")
    assert codes[-1] == 429 and codes.count(200) >= 2, codes  # 1 r/s and a burst of 1
    # Another client behind the same proxy has its own bucket.
    assert get(s, "203.0.113.2") == 200
    # A client's own X-Forwarded-For entries are skipped: the proxy's last hop names the client.
    r = s.request("PUT", "/api/v1/plans", headers={"X-Forwarded-For": "198.51.100.66, 203.0.113.3"})
    assert r.status_code == 200, r.text
    # The PUT's line is the last one to come (nginx writes it once the answer has gone out).
    log = access_log(s, last="PUT /api/v1/plans")
    n = len(codes) + 2
    assert [line.split()[0] for line in log[-n:]] == ["203.0.113.1"] * len(codes) + ["203.0.113.2", "203.0.113.3"], log[-n:]
    # Only the fixture's start-up probe, which came without the header, is the proxy's own address.
    assert not any(line.startswith("198.51.100.66 ") for line in log), log
    with sqlite3.connect(os.path.join(s.data, "peon.db")) as db:
        assert db.execute("SELECT client_ip FROM audit WHERE method = 'PUT' ORDER BY id DESC LIMIT 1").fetchone() == ("203.0.113.3",)


def test_without_trusted_proxies_x_forwarded_for_is_ignored(make_stack):
    s = make_stack(env=LIMITED)
    assert exhaust(s, "203.0.113.1")[-1] == 429
    # A different header value is no way out of the bucket: everyone here is 127.0.0.1.
    assert get(s, "203.0.113.2") == 429
    log = access_log(s)
    assert all(line.startswith("127.0.0.1 ") for line in log) and len(log) >= 3, log
    r = s.request("GET", "/api/v1/orchestrator")
    assert r.status_code == 429 and r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"


def render(tmp_path, **env):
    """scripts/render-nginx.sh, which stack.sh runs first: its exit status and stderr."""
    full = {**os.environ, "PEON_DATA_DIR": str(tmp_path / "var"), **env}
    out = subprocess.run([os.path.join(ROOT, "scripts", "render-nginx.sh")], env=full, capture_output=True, text=True, timeout=30)
    return out.returncode, out.stderr


def test_x_forwarded_for_from_an_untrusted_address_is_ignored(make_stack):
    s = make_stack(env={**LIMITED, "PEON_TRUSTED_PROXIES": "10.9.0.0/16", "PEON_START_SCHEDULER": "0"})
    assert exhaust(s, "203.0.113.1")[-1] == 429
    assert get(s, "203.0.113.2") == 429
    assert all(line.startswith("127.0.0.1 ") for line in access_log(s)), access_log(s)


@pytest.mark.parametrize("value", ["bogus", "10.0.0.0/0", "1.2.3.4/33", "300.1.1.1", "*", "10.0.0.0/", "fe80::/129"])
def test_bad_trusted_proxies_are_refused(tmp_path, value):
    code, err = render(tmp_path, PEON_TRUSTED_PROXIES=value)
    assert code == 2 and "PEON_TRUSTED_PROXIES" in err, (code, err)


def test_http_redirect_is_308_and_requests_keeps_the_put_body(stack):
    r = requests.get(f"http://127.0.0.1:{stack.http_port}/api/v1/plans?x=1", allow_redirects=False)
    assert r.status_code == 308
    assert r.headers["Location"] == f"https://127.0.0.1:{stack.https_port}/api/v1/plans?x=1"
    assert "Strict-Transport-Security" not in r.headers
    # A create missing one required setting: the answer lists what the body lacks (nothing is made).
    uid = f"peontest.{RUN}redir"
    body = {"SERVER_NAME": "Redirected"}
    cert = os.path.join(stack.data, "tls", "cert.pem")
    headers = {"X-Api-Key": stack.api_key}
    direct = requests.put(stack.url(f"/api/v1/server/create/{uid}"), json=body, headers=headers, verify=cert, timeout=30)
    bodiless = requests.put(stack.url(f"/api/v1/server/create/{uid}"), headers=headers, verify=cert, timeout=30)
    assert direct.status_code == 400 and direct.json() != bodiless.json(), (direct.text, bodiless.text)
    redirected = requests.put(f"http://127.0.0.1:{stack.http_port}/api/v1/server/create/{uid}", json=body, headers=headers,
                              verify=cert, timeout=30)
    assert [h.status_code for h in redirected.history] == [308]
    assert redirected.status_code == 400 and redirected.json() == direct.json(), redirected.text


def test_http_mode_off_closes_the_http_port(make_stack, tmp_path):
    s = make_stack(env={"PEON_HTTP_MODE": "off", "PEON_START_SCHEDULER": "0"})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{s.http_port}/api/v1/plans", allow_redirects=False, timeout=5)
    code, err = render(tmp_path, PEON_HTTP_MODE="sometimes")
    assert code == 2 and "PEON_HTTP_MODE" in err, (code, err)


def test_security_headers_on_answers_and_nginx_errors(stack):
    answers = [
        stack.request("GET", "/api/v1/orchestrator"),  # a worker's 200
        stack.request("GET", "/api/v1/plans", key=None),  # a worker's 401
        stack.request("GET", "/nothing/here"),  # nginx's JSON 404
        stack.request("PUT", "/api/v1/plans", data=b"x" * (2 << 20)),  # nginx's JSON 413
        stack.request("GET", "/openapi.json"),
    ]
    assert [r.status_code for r in answers] == [200, 401, 404, 413, 200]
    for r in answers:
        assert r.headers["Cache-Control"] == "no-store", r.url
        assert r.headers["X-Content-Type-Options"] == "nosniff", r.url
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000", r.url


def handshake(port, cipher, version=ssl.TLSVersion.TLSv1_2):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers(cipher)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        return tls.cipher()[0]


def test_tls12_only_with_aead_suites(stack):
    assert handshake(stack.https_port, "ECDHE-ECDSA-AES128-GCM-SHA256") == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert handshake(stack.https_port, "ECDHE-ECDSA-CHACHA20-POLY1305") == "ECDHE-ECDSA-CHACHA20-POLY1305"
    for cbc in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
        with pytest.raises(ssl.SSLError):
            handshake(stack.https_port, cbc)
    assert handshake(stack.https_port, "DEFAULT", ssl.TLSVersion.TLSv1_3).startswith("TLS_")


def served_certificate(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        return tls.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate_without_dropping_a_request_in_flight(make_stack):
    s = make_stack(env={"PEON_START_SCHEDULER": "0"})
    tls_dir = os.path.join(s.data, "tls")
    old = served_certificate(s.https_port)
    # A request in flight: headers and half its body sent over the old certificate's connection.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    body = b"{" + b" " * 18 + b"}"
    conn = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.https_port), timeout=30))
    conn.sendall(b"PUT /api/v1/plans HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: " + s.api_key.encode()
                 + b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
    # certbot's deploy hook: new files in place, then SIGHUP to the stack.
    new_key, new_cert = os.path.join(s.dir, "new-key.pem"), os.path.join(s.dir, "new-cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=peon-renewed", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", new_key, "-out", new_cert],
                   check=True, capture_output=True)
    os.replace(new_key, os.path.join(tls_dir, "key.pem"))
    os.replace(new_cert, os.path.join(tls_dir, "cert.pem"))
    os.kill(s.proc.pid, signal.SIGHUP)
    expected = ssl.PEM_cert_to_DER_cert(open(os.path.join(tls_dir, "cert.pem")).read())
    deadline, seen = time.time() + 10, old
    while time.time() < deadline and seen != expected:
        time.sleep(0.1)
        seen = served_certificate(s.https_port)
    assert seen == expected != old, "a new connection sees the new certificate"
    # The old connection finishes its request on the old worker.
    time.sleep(0.5)
    conn.sendall(body[10:])
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    conn.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert s.request("GET", "/api/v1/orchestrator").status_code == 200
    # The stack script survived the signal and still supervises (and stops cleanly).
    assert s.proc.poll() is None, s.output()
    assert "nginx reloading (SIGHUP)" in s.output() and "exited unexpectedly" not in s.output(), s.output()
    assert s.stop() == 0 and "peon stopped" in s.output(), s.output()


def test_fail2ban_deny_action_bans_the_real_client_in_nginx(make_stack):
    """nginx/fail2ban/action.d/peon-deny.conf's commands, as fail2ban would run them for a client behind the proxy."""
    import configparser
    s = make_stack(env={"PEON_TRUSTED_PROXIES": "127.0.0.1", "PEON_START_SCHEDULER": "0"})
    action = configparser.ConfigParser(interpolation=None)
    action.read(os.path.join(ROOT, "nginx", "fail2ban", "action.d", "peon-deny.conf"))
    denyfile = os.path.join(s.data, "nginx", "extra", "fail2ban-deny.conf")

    def run(name, ip=""):
        for command in action["Definition"][name].strip().splitlines():
            command = command.replace("<denyfile>", denyfile).replace("<ip>", ip).replace("<reload>", f"kill -HUP {s.proc.pid}")
            subprocess.run(["sh", "-c", command], check=True)

    def status(ip):
        r = s.request("GET", "/api/v1/orchestrator", headers={"X-Forwarded-For": ip})
        return r.status_code, r.headers.get("Content-Type"), r.json().get("code")

    run("actionstart")
    run("actionban", "203.0.113.66")
    run("actionban", "203.0.113.66")  # fail2ban may repeat a ban: one line
    assert open(denyfile).read() == "deny 203.0.113.66;\n"
    assert wait_for(lambda: status("203.0.113.66")[0] == 403)
    assert status("203.0.113.66") == (403, "application/json", "client.banned")
    assert status("203.0.113.67")[0] == 200
    run("actionunban", "203.0.113.66")
    assert wait_for(lambda: status("203.0.113.66")[0] == 200), s.output()


def wait_for(predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
