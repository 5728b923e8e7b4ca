"""Hostile input, logs without secrets, and fail2ban against the access log the stack wrote."""
import glob
import os
import re
import shutil
import subprocess

from conftest import ROOT

HOSTILE = ["..", "%2e%2e", ".", "a;b", ";id", "$(id)", "%24(id)", "`id`", "a%20b", "%20", "a%0Ab", "%00", "%C3%A9t%C3%A9",
           "%F0%9F%98%80", "\u00e9t\u00e9".encode().decode("latin-1"), "Valheim", "a.b", "a|b", "%ff", "x" * 10_000,
           "%25", "${API_KEY}"]


def test_hostile_game_uids_are_json_400(stack):
    for seg in HOSTILE:
        code, body = stack.curl("-H", f"X-Api-Key: {stack.api_key}", stack.url("/api/v1/plan/" + seg))
        assert code == 400, (seg[:40], code, body[:200])
        assert b'"code":"request.invalid"' in body, seg[:40]
    # Without a key they are refused before anything else.
    code, _ = stack.curl(stack.url("/api/v1/plan/$(id)"))
    assert code == 401


def test_hostile_bodies_and_headers(stack):
    for body in (b"{", b"[1,2]", b"\xff\xfe", b"[" * 100000, b'{"a":' * 5000):
        r = stack.request("PUT", "/api/v1/plans", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code in (200, 400), r.status_code
        assert r.headers["Content-Type"] == "application/json"
    r = stack.request("GET", "/api/v1/plans", headers={"User-Agent": '"; rm -rf / " $(id)', "X-Forwarded-For": "6.6.6.6"})
    assert r.status_code == 200


def test_no_api_key_in_any_log(stack):
    stack.request("GET", "/api/v1/plans", key="secret-wrong-key-777")
    stack.request("GET", "/api/v1/plans?api_key=secret-query-key-888")
    logs = glob.glob(stack.data + "/log/*") + [stack.stdout.name, stack.stderr.name]
    for path in logs:
        text = open(path, errors="replace").read()
        for secret in (stack.api_key, "secret-wrong-key-777", "secret-query-key-888"):
            assert secret not in text, (path, secret)


def test_fail2ban_matches_refused_requests(make_stack):
    s = make_stack(env={"PEON_RATE_LIMIT": "5", "PEON_RATE_BURST": "5"})
    for _ in range(4):
        s.request("GET", "/api/v1/plans", key="bad-key-123456")
    for _ in range(30):
        s.request("GET", "/api/v1/orchestrator")
    s.stop()
    log = os.path.join(s.data, "log", "access.log")
    lines = open(log).read().splitlines()
    refused = [l for l in lines if re.search(r'" (401|403|429) ', l)]
    assert any('" 401 ' in l for l in refused) and any('" 429 ' in l for l in refused)
    out = subprocess.run(["fail2ban-regex", log, os.path.join(ROOT, "nginx/fail2ban/filter.d/peon.conf")],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", out.stdout)
    assert m, out.stdout + out.stderr
    assert int(m.group(3)) == len(refused), out.stdout
    assert "127.0.0.1" in out.stdout


def test_fail2ban_jail_loads(stack, tmp_path):
    """The shipped jail, pointed at this stack's access log, passes fail2ban's own configuration test."""
    conf = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf)
    for extra in (conf / "jail.d").iterdir():
        extra.unlink()  # only Peon's jail
    shutil.copy(os.path.join(ROOT, "nginx/fail2ban/filter.d/peon.conf"), conf / "filter.d" / "peon.conf")
    jail = open(os.path.join(ROOT, "nginx/fail2ban/jail.d/peon.conf")).read()
    jail = re.sub(r"(?m)^logpath\s*=.*$", "logpath = " + os.path.join(stack.data, "log", "access.log"), jail)
    (conf / "jail.d" / "peon.conf").write_text(jail)
    test = subprocess.run(["fail2ban-client", "-c", str(conf), "-t"], capture_output=True, text=True, timeout=60)
    assert "configuration test is successful" in test.stdout + test.stderr, test.stdout + test.stderr
    dump = subprocess.run(["fail2ban-client", "-c", str(conf), "-d"], capture_output=True, text=True, timeout=60).stdout
    assert "['set', 'peon', 'maxretry', 10]" in dump and "(?:401|403|429)" in dump
