"""Keys, audit and metrics over the API against the real stack; /metrics parsed with Prometheus's own parser."""
import socket
import sqlite3
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import RUN
from test_servers import SETTINGS


def metrics(stack, **kw):
    r = requests.get(stack.url("/metrics"), verify=False, timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families, family, sample_name, **labels):
    for s in families[family].samples if family in families else []:
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


def wait_for(check, timeout=8):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return check()


def test_keys_over_the_api(stack):
    r = stack.request("POST", "/api/v1/keys", json={"scope": "read", "label": "it read", "expires_at": "2099-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["key"].startswith("peon_") and made["scope"] == "read" and made["expires_at"] == "2099-01-01T00:00:00Z"
    assert stack.request("GET", "/api/v1/servers", key=made["key"]).status_code == 200
    assert stack.request("GET", "/api/v1/keys", key=made["key"]).status_code == 403
    listed = stack.request("GET", "/api/v1/keys").json()["keys"]
    mine = [k for k in listed if k["id"] == made["id"]][0]
    assert "key" not in mine and "hash" not in mine and mine["revoked"] is False and mine["last_used_at"]
    # The CLI sees the same key, with its expiry.
    out = stack.peon("key", "list")
    assert made["id"] in out.stdout and "2099-01-01T00:00:00Z" in out.stdout, out.stdout + out.stderr
    assert stack.request("DELETE", f"/api/v1/keys/{made['id']}").status_code == 200
    assert stack.request("GET", "/api/v1/servers", key=made["key"]).json()["code"] == "auth.revoked_key"
    # A request cannot revoke the key it is made with.
    boot = [k for k in listed if k["bootstrap"] and not k["revoked"]][0]
    r = stack.request("DELETE", f"/api/v1/keys/{boot['id']}")
    assert r.status_code == 409 and r.json()["code"] == "key.self"


def test_expired_keys_are_refused(stack):
    r = stack.request("POST", "/api/v1/keys", json={"scope": "read", "expires_at": int(time.time()) + 2})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert stack.request("GET", "/api/v1/servers", key=key).status_code == 200
    time.sleep(2.5)
    r = stack.request("GET", "/api/v1/servers", key=key)
    assert r.status_code == 401 and r.json()["code"] == "auth.expired_key"


@pytest.mark.parametrize("body", [{"scope": "root"}, {"scope": "read", "label": "a\nb"}, {"scope": "read", "expires_at": "2001-01-01"},
                                  {"scope": "read", "expires_at": 1e300}, {"scope": "read", "label": "x" * 10000}, ["scope"]])
def test_hostile_key_bodies(stack, body):
    r = stack.request("POST", "/api/v1/keys", json=body)
    assert r.status_code == 400 and r.json()["status"] == "error"


def test_audit_pages_and_filters(stack):
    for n in range(3):
        assert stack.request("POST", "/api/v1/keys", json={"scope": "read", "label": f"audit {n}"}).status_code == 201
    first = stack.request("GET", "/api/v1/audit?limit=2").json()
    assert len(first["entries"]) == 2 and first["next"]
    assert first["entries"][0]["method"] == "POST" and first["entries"][0]["path"] == "/api/v1/keys"
    second = stack.request("GET", f"/api/v1/audit?limit=2&cursor={first['next']}").json()
    ids = [e["id"] for e in first["entries"] + second["entries"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert stack.request("GET", "/api/v1/audit?since=2999-01-01").json() == {"entries": [], "next": None}
    for q in ["limit=0", "limit=5000", "since=notatime", "cursor=-1", "server=../x", "server=%00"]:
        r = stack.request("GET", f"/api/v1/audit?{q}")
        assert r.status_code == 400, q


def test_metrics_count_requests_and_failed_keys(stack):
    before = metrics(stack)
    route = {"route": "/api/v1/servers", "method": "GET", "status": "401"}
    n0 = value(before, "peon_http_requests", "peon_http_requests_total", **route)
    f0 = value(before, "peon_auth_failures", "peon_auth_failures_total", client="127.0.0.1", reason="auth.invalid_key")
    for _ in range(3):
        assert stack.request("GET", "/api/v1/servers", key="not-a-valid-key-at-all").status_code == 401
    # Other worker processes flush once a second.
    assert wait_for(lambda: value(metrics(stack), "peon_http_requests", "peon_http_requests_total", **route) >= n0 + 3)
    after = metrics(stack)
    assert value(after, "peon_auth_failures", "peon_auth_failures_total", client="127.0.0.1", reason="auth.invalid_key") >= f0 + 3
    assert value(after, "peon_http_request_duration_seconds", "peon_http_request_duration_seconds_count", **route) >= n0 + 3
    assert value(after, "peon_api_workers", "peon_api_workers") == 2
    assert value(after, "peon_api_worker_processes", "peon_api_worker_processes") == 2
    assert value(after, "peon_api_threads", "peon_api_threads") > 0
    assert value(after, "peon_scheduler_up", "peon_scheduler_up") == 1
    assert 0 <= value(after, "peon_scheduler_heartbeat_age_seconds", "peon_scheduler_heartbeat_age_seconds") <= 5
    # Without a key, and a key does not help from elsewhere; the API's own routes still need one.
    assert requests.get(stack.url("/api/v1/metrics"), verify=False).status_code in (401, 404)


def test_metrics_count_jobs_and_docker(stack):
    before = metrics(stack)
    jobs0 = sum(s.value for s in before["peon_jobs"].samples if s.labels["kind"] == "adopt") if "peon_jobs" in before else 0
    r = stack.request("PUT", "/api/v1/servers")
    assert r.status_code in (200, 202), r.text
    assert wait_for(lambda: sum(s.value for s in metrics(stack)["peon_jobs"].samples if s.labels["kind"] == "adopt") >= jobs0 + 1)
    # The scheduler times its Docker calls and flushes them every 2 s.
    assert wait_for(lambda: value(metrics(stack), "peon_docker_api_duration_seconds", "peon_docker_api_duration_seconds_count") > 0)
    # Adopting reads every node's manifests: a node operation, timed the same way.
    assert wait_for(lambda: value(metrics(stack), "peon_node_operation_duration_seconds", "peon_node_operation_duration_seconds_count",
                                  op="manifests") > 0)


def host_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        return s.getsockname()[0]


def test_metrics_refused_from_other_addresses_unless_allowed(make_stack):
    addr = host_address()
    assert not addr.startswith("127.")
    s = make_stack(env={"PEON_BIND": "0.0.0.0"})
    elsewhere = f"https://{addr}:{s.https_port}/metrics"
    r = requests.get(elsewhere, verify=False, timeout=10, headers={"X-Api-Key": s.api_key, "X-Forwarded-For": "127.0.0.1"})
    assert r.status_code == 403 and r.json()["code"] == "metrics.forbidden"
    assert requests.get(s.url("/metrics"), verify=False, timeout=10).status_code == 200
    s.stop()
    allowed = make_stack(env={"PEON_BIND": "0.0.0.0", "PEON_METRICS_ALLOW": f"{addr}/32, 10.0.0.0/8"})
    r = requests.get(f"https://{addr}:{allowed.https_port}/metrics", verify=False, timeout=10)
    assert r.status_code == 200 and "peon_build_info" in r.text


@pytest.mark.parametrize("bad", ["300.1.1.1", "10.0.0.0/33", "all", "1.2.3.4; allow all", "$(id)"])
def test_metrics_allow_is_validated(make_stack, bad):
    with pytest.raises(RuntimeError) as e:
        make_stack(env={"PEON_METRICS_ALLOW": bad})
    assert "PEON_METRICS_ALLOW" in str(e.value)


def test_metrics_show_each_server(stack):
    from conftest import RUN
    uid = f"peontest.{RUN}met"
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "m", "PASSWORD": "pw", "start_later": True})
    assert r.status_code == 200, r.text
    m = metrics(stack)
    states = [s for s in m["peon_server_state"].samples if s.labels["server"] == uid]
    assert len(states) == 1 and states[0].labels["game"] == "peontest" and states[0].value == 1
    assert value(m, "peon_server_desired_running", "peon_server_desired_running", server=uid) == 0
    assert value(m, "peon_server_crashes", "peon_server_crashes_total", server=uid) == 0
    # No sample yet (never started): CPU and memory are omitted, not reported as 0.
    assert all(s.labels["server"] != uid for s in m.get("peon_server_cpu_percent", type("", (), {"samples": []})).samples)


def audit_rows(stack, key_id):
    db = sqlite3.connect(f"file:{stack.data}/peon.db?mode=ro", uri=True)
    try:
        return db.execute("SELECT method, path, status, result FROM audit WHERE key_id = ? ORDER BY id", (key_id,)).fetchall()
    finally:
        db.close()


def test_an_expiring_admin_key_cannot_mint_one_that_outlives_it(stack):
    r = stack.request("POST", "/api/v1/keys", json={"scope": "admin", "expires_at": int(time.time()) + 3600})
    assert r.status_code == 201, r.text
    temporary, until = r.json()["key"], int(time.time()) + 3600
    for body in [{"scope": "read"}, {"scope": "admin", "expires_at": until + 86400}]:
        r = stack.request("POST", "/api/v1/keys", json=body, key=temporary)
        assert r.status_code == 400 and "expires_at" in r.json()["info"], (body, r.text)
    r = stack.request("POST", "/api/v1/keys", json={"scope": "read", "expires_at": until - 60}, key=temporary)
    assert r.status_code == 201, r.text


def test_an_operate_key_may_raise_a_backup_policy_but_not_lower_it(stack):
    uid = f"peontest.{RUN}pol"
    operate = stack.request("POST", "/api/v1/keys", json={"scope": "operate"}).json()["key"]
    try:
        assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
        assert stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", json={"keep_last": 5, "keep_daily": 7}).status_code in (200, 202)
        r = stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", json={"keep_last": 8}, key=operate)
        assert r.status_code in (200, 202), r.text
        for lower in ({"keep_last": 1}, {"keep_daily": 0}, {"keep_last": 9, "keep_weekly": 0, "keep_daily": 6}):
            r = stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", json=lower, key=operate)
            assert r.status_code == 403 and r.json()["code"] == "auth.scope", (lower, r.text)
        policy = stack.request("GET", f"/api/v1/server/backup-policy/{uid}").json()
        assert (policy["keep_last"], policy["keep_daily"]) == (8, 7), policy
        assert stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", json={"keep_last": 1}).status_code in (200, 202)
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_save_is_audited_and_refusals_are_bounded_per_key(stack):
    uid = f"peontest.{RUN}aud"
    r = stack.request("POST", "/api/v1/keys", json={"scope": "read", "label": "flood"})
    reader, reader_id = r.json()["key"], r.json()["id"]
    try:
        assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
        admin_id = [k for k in stack.request("GET", "/api/v1/keys").json()["keys"] if k["bootstrap"] and not k["revoked"]][0]["id"]
        r = stack.request("GET", f"/api/v1/server/save/{uid}", timeout=120)
        assert r.status_code == 200, r.text
        assert ("GET", f"/api/v1/server/save/{uid}", 200, "ok") in audit_rows(stack, admin_id)
        # A read key's refused writes: recorded up to the bound, then only counted.
        before = value(metrics(stack), "peon_audit_refusals_dropped", "peon_audit_refusals_dropped_total")
        for _ in range(70):
            assert stack.request("PUT", f"/api/v1/server/stop/{uid}", key=reader).status_code == 403
        rows = audit_rows(stack, reader_id)
        assert len(rows) == 60 and all(row[2] == 403 for row in rows), len(rows)
        assert wait_for(lambda: value(metrics(stack), "peon_audit_refusals_dropped",
                                      "peon_audit_refusals_dropped_total") >= before + 10)
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
