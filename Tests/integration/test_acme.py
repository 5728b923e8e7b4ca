"""PEON_ACME_*: a certificate from an ACME server, obtained and renewed by certbot (scripts/acme.sh,
run by scripts/stack.sh) through nginx's plain HTTP port, against a real ACME server: Debian's pebble,
with pebble-challtestsrv as its DNS so the test's domain resolves to 127.0.0.1."""
import json
import os
import socket
import ssl
import subprocess
import time

import pytest
import requests
from cryptography import x509

from conftest import ROOT, BIN, free_port
from test_service import wait_until
from test_stack_script import sessions

DOMAIN = "acme.peon.test"




def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class Pebble:
    """pebble (ACME directory at `directory`, validating http-01 on `http_port` of whatever the
    domain resolves to) and pebble-challtestsrv as its DNS (every name: 127.0.0.1, no AAAA)."""

    def __init__(self, folder, http_port):
        self.folder = folder
        # pebble's own TLS (the ACME API and the management port): a CA of the test's, which
        # certbot is told to trust (PEON_ACME_CA).
        self.ca = os.path.join(folder, "pebble-ca.pem")
        ca_key, key, csr, cert = (os.path.join(folder, n) for n in ("pebble-ca.key", "pebble.key", "pebble.csr", "pebble.pem"))
        ext = os.path.join(folder, "pebble.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=Peon test: pebble's TLS CA", "-keyout", ca_key, "-out", self.ca)
        openssl("req", *ec, "-subj", "/CN=localhost", "-keyout", key, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert)
        self.port, self.management, dns = free_port(), free_port(), free_port()
        config = os.path.join(folder, "pebble-config.json")
        with open(config, "w") as f:
            json.dump({"pebble": {
                "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.management}",
                "certificate": cert, "privateKey": key, "httpPort": http_port, "tlsPort": free_port(),
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        self.log = open(os.path.join(folder, "pebble.log"), "w+")
        self.procs = [subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", f"127.0.0.1:{free_port()}", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)]
        # No sleep before validating, and no nonce refused at random (certbot would retry, slowly).
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        self.procs.append(subprocess.Popen(["pebble", "-config", config, "-dnsserver", f"127.0.0.1:{dns}"], env=env,
                                           stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder))
        if not wait_until(self.up, 30, step=0.2):
            self.close()
            raise RuntimeError("pebble did not start: " + self.output())

    def up(self):
        try:
            return requests.get(self.directory, verify=self.ca, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def pem(self, path):
        """The management port's /roots/0 or /intermediates/0: the CA pebble issues from."""
        r = requests.get(f"https://127.0.0.1:{self.management}{path}", verify=self.ca, timeout=10)
        r.raise_for_status()
        return r.text

    def output(self):
        self.log.flush()
        return open(self.log.name).read()

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.log.close()


@pytest.fixture
def acme_stack(make_stack, tmp_path):
    """A stack whose certificate comes from a fresh pebble: (stack, pebble)."""
    http_port = free_port()
    pebble = Pebble(str(tmp_path), http_port)
    try:
        s = make_stack(env={"PEON_HTTP_PORT": str(http_port), "PEON_START_SCHEDULER": "0",
                            "PEON_ACME_DOMAIN": DOMAIN, "PEON_ACME_EMAIL": "ops@peon.test",
                            "PEON_ACME_SERVER": pebble.directory, "PEON_ACME_CA": pebble.ca})
        s.http_port = http_port
        yield s, pebble
    finally:
        pebble.close()


def served(port, cafile=None):
    """The certificate a new TLS connection to the stack gets for DOMAIN (SNI); with `cafile`, the
    chain is verified against it and the name checked."""
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def session_processes(sid):
    """Processes (not zombies) of the session `sid`: what the stack script started."""
    return sorted(pid for pid, (session, state) in sessions().items() if session == sid and state != "Z")


def acme_loop_running(s):
    out = subprocess.run(["pgrep", "-P", str(s.proc.pid), "-f", "scripts/acme.sh --loop"], capture_output=True, text=True)
    return out.stdout.split()


def test_certificate_obtained_served_and_renewed_without_dropping_a_request(acme_stack):
    s, pebble = acme_stack
    intermediate = x509.load_pem_x509_certificate(pebble.pem("/intermediates/0").encode())
    root = os.path.join(s.dir, "pebble-root.pem")
    with open(root, "w") as f:
        f.write(pebble.pem("/roots/0"))

    # Obtained in the background, then served in place of the self-signed pair.
    first = wait_until(lambda: (c := served(s.https_port)).issuer == intermediate.subject and c, 90, step=0.2)
    assert first, s.output() + pebble.output()
    # The whole chain verifies against pebble's root, for the domain.
    assert served(s.https_port, cafile=root).serial_number == first.serial_number
    assert first.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == DOMAIN or \
        DOMAIN in first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "acme: new certificate for " + DOMAIN in s.output(), s.output()
    # certbot's files under the data dir, nothing in /etc/letsencrypt.
    live = os.path.join(s.data, "acme", "config", "live", DOMAIN)
    assert os.path.realpath(os.path.join(live, "fullchain.pem")).startswith(os.path.join(s.data, "acme", "config", "archive"))
    assert f"ssl_certificate {live}/fullchain.pem;" in open(os.path.join(s.data, "nginx", "nginx.conf")).read()
    # The API answers over the new certificate, verified.
    ctx = ssl.create_default_context(cafile=root)
    with socket.create_connection(("127.0.0.1", s.https_port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls:
        tls.sendall(b"GET /api/v1/orchestrator HTTP/1.1\r\nHost: " + DOMAIN.encode() + b"\r\nX-Api-Key: "
                    + s.api_key.encode() + b"\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]

    # A request in flight across the renewal's reload: headers and half its body sent now, on a
    # connection verified against pebble's root (nginx closes idle keep-alive connections at a
    # reload, as it always does; a request it has begun is finished by the old worker).
    body = b"{" + b" " * 18 + b"}"
    conn = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.https_port), timeout=30), server_hostname=DOMAIN)
    conn.sendall(b"PUT /api/v1/plans HTTP/1.1\r\nHost: " + DOMAIN.encode() + b"\r\nX-Api-Key: " + s.api_key.encode()
                 + b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
    assert x509.load_der_x509_certificate(conn.getpeercert(binary_form=True)).serial_number == first.serial_number

    # A forced renewal through the same mechanism (the loop runs it every 12 h, renewing when due).
    out = subprocess.run([os.path.join(ROOT, "scripts", "acme.sh"), "--force-renewal"], env=s.env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + pebble.output()
    assert "nginx reloaded" in out.stderr, out.stderr
    second = wait_until(lambda: (c := served(s.https_port, cafile=root)).serial_number != first.serial_number and c, 15, step=0.2)
    assert second and second.issuer == intermediate.subject, s.output()

    # The old connection finishes its request.
    conn.sendall(body[10:])
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    conn.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert s.proc.poll() is None and "exited unexpectedly" not in s.output(), s.output()

    # The stop ends the ACME loop too (it is sleeping until the next renewal).
    assert acme_loop_running(s), s.output()
    sid = s.proc.pid
    assert s.stop() == 0 and "peon stopped" in s.output(), s.output()
    assert session_processes(sid) == [], s.output()


def test_unreachable_acme_server_leaves_the_stack_up_and_self_signed(make_stack):
    # Nothing listens there: certbot fails, the stack serves its self-signed pair meanwhile.
    s = make_stack(env={"PEON_START_SCHEDULER": "0", "PEON_ACME_DOMAIN": DOMAIN,
                        "PEON_ACME_SERVER": f"https://127.0.0.1:{free_port()}/dir"})
    assert s.request("GET", "/api/v1/orchestrator").status_code == 200  # verified against tls/cert.pem
    assert wait_until(lambda: "acme: no certificate for " + DOMAIN in s.output(), 60, step=0.2), s.output()
    # It tries again later; the stack keeps serving.
    assert acme_loop_running(s) and s.proc.poll() is None, s.output()
    assert s.request("GET", "/api/v1/orchestrator").status_code == 200
    with open(os.path.join(s.data, "tls", "cert.pem")) as f:
        assert served(s.https_port) == x509.load_pem_x509_certificate(f.read().encode())

    # The plain HTTP port answers challenge tokens from the webroot, and redirects everything else.
    http = f"http://127.0.0.1:{s.http_port}"
    challenges = os.path.join(s.data, "acme", "webroot", ".well-known", "acme-challenge")
    os.makedirs(challenges, exist_ok=True)
    with open(os.path.join(challenges, "tok_en-123"), "w") as f:
        f.write("tok_en-123.thumbprint")
    r = requests.get(http + "/.well-known/acme-challenge/tok_en-123", allow_redirects=False, timeout=5)
    assert (r.status_code, r.text) == (200, "tok_en-123.thumbprint"), r.text
    for path in ("/.well-known/acme-challenge/missing", "/.well-known/acme-challenge/"):
        assert requests.get(http + path, allow_redirects=False, timeout=5).status_code == 404, path
    r = requests.get(http + "/api/v1/orchestrator", allow_redirects=False, timeout=5)
    assert r.status_code == 308 and r.headers["Location"] == f"https://127.0.0.1:{s.https_port}/api/v1/orchestrator"

    sid = s.proc.pid
    started = time.time()
    assert s.stop() == 0 and "peon stopped" in s.output(), s.output()
    assert time.time() - started < 15
    assert session_processes(sid) == [], s.output()


BAD = [
    ({"PEON_ACME_DOMAIN": "*.peon.example.com"}, "PEON_ACME_DOMAIN must be one domain name"),
    ({"PEON_ACME_DOMAIN": "203.0.113.7"}, "PEON_ACME_DOMAIN must be one domain name"),
    ({"PEON_ACME_DOMAIN": "a.example.com,b.example.com"}, "PEON_ACME_DOMAIN must be one domain name"),
    ({"PEON_ACME_DOMAIN": "peon"}, "PEON_ACME_DOMAIN must be one domain name"),
    ({"PEON_ACME_DOMAIN": DOMAIN, "PEON_ACME_EMAIL": "not an address"}, "PEON_ACME_EMAIL must be one e-mail address"),
    ({"PEON_ACME_DOMAIN": DOMAIN, "PEON_ACME_SERVER": "http://acme.example.com/directory"}, "PEON_ACME_SERVER must be an ACME directory's https:// URL"),
    ({"PEON_ACME_DOMAIN": DOMAIN, "PEON_ACME_SERVER": "ftp://127.0.0.1/dir"}, "PEON_ACME_SERVER must be an ACME directory's https:// URL"),
    ({"PEON_ACME_DOMAIN": DOMAIN, "PEON_ACME_CA": "/nonexistent/ca.pem"}, "PEON_ACME_CA must be a readable PEM certificate file"),
    ({"PEON_ACME_DOMAIN": DOMAIN, "PEON_ACME_CA": "/etc/hostname"}, "PEON_ACME_CA must be a readable PEM certificate file"),
    ({"PEON_ACME_DOMAIN": DOMAIN, "PEON_HTTP_MODE": "off"}, "PEON_ACME_DOMAIN needs the plain HTTP port"),
    ({"PEON_ACME_DOMAIN": DOMAIN, "PEON_TLS_CERT": "/etc/peon/cert.pem", "PEON_TLS_KEY": "/etc/peon/key.pem"}, "both name the certificate"),
    ({"PEON_ACME_EMAIL": "ops@example.com"}, "PEON_ACME_EMAIL is set but PEON_ACME_DOMAIN is not"),
]


@pytest.mark.parametrize("env,message", BAD, ids=[m + ":" + ",".join(e.values()) for e, m in BAD])
def test_bad_acme_settings_are_refused_at_start(tmp_path, env, message):
    https_port, http_port = free_port(), free_port()
    full = {**os.environ, "PEON_DATA_DIR": str(tmp_path / "var"), "PEON_BIN": BIN, "PEON_HTTPS_PORT": str(https_port),
            "PEON_HTTP_PORT": str(http_port), **env}
    for name in ("PEON_ACME_DOMAIN", "PEON_ACME_EMAIL", "PEON_ACME_SERVER", "PEON_ACME_CA", "PEON_TLS_CERT", "PEON_TLS_KEY"):
        if name not in env:
            full.pop(name, None)
    out = subprocess.run([os.path.join(ROOT, "scripts", "stack.sh")], env=full, capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Peon is running" not in out.stdout
    assert not os.path.exists(tmp_path / "var" / "run" / "api.sock")


def test_serve_mode_answers_challenges_too(tmp_path):
    full = {**os.environ, "PEON_DATA_DIR": str(tmp_path / "var"), "PEON_HTTP_MODE": "serve", "PEON_ACME_DOMAIN": DOMAIN}
    out = subprocess.run([os.path.join(ROOT, "scripts", "render-nginx.sh")], env=full, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    conf = open(tmp_path / "var" / "nginx" / "http.conf").read()
    webroot = tmp_path / "var" / "acme" / "webroot"
    assert f"location ^~ /.well-known/acme-challenge/ {{ root {webroot};" in conf and "include " in conf, conf
    # Without ACME, the listener stays as it was.
    full.pop("PEON_ACME_DOMAIN")
    assert subprocess.run([os.path.join(ROOT, "scripts", "render-nginx.sh")], env=full, capture_output=True, timeout=30).returncode == 0
    assert "acme-challenge" not in open(tmp_path / "var" / "nginx" / "http.conf").read()


@pytest.mark.parametrize("server", ["https://acme-staging-v02.api.letsencrypt.org/directory", "https://[::1]:14000/dir",
                                    "http://127.0.0.1:14000/dir", "http://localhost/directory"])
def test_acme_servers_over_https_or_on_loopback_are_accepted(tmp_path, server):
    full = {**os.environ, "PEON_DATA_DIR": str(tmp_path / "var"), "PEON_ACME_DOMAIN": DOMAIN, "PEON_ACME_SERVER": server}
    out = subprocess.run([os.path.join(ROOT, "scripts", "render-nginx.sh")], env=full, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
