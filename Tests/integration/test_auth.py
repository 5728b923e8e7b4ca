"""API keys through the real stack: every route refuses missing, wrong and revoked keys."""
import sqlite3

ROUTES = [("GET", "/api/v1/orchestrator"), ("GET", "/api/v1/plans"), ("PUT", "/api/v1/plans"), ("GET", "/api/v1/plan/valheim")]
ENVELOPE = {"status", "info", "error", "detail", "code"}


def test_missing_and_wrong_keys_are_401_json_on_every_route(stack):
    for method, path in ROUTES:
        for key in (None, "", "wrong-key-xyz", "peon_" + "A" * 40, "k" * 300):
            r = stack.request(method, path, key=key)
            assert r.status_code == 401, (method, path, key)
            assert r.headers["Content-Type"] == "application/json"
            body = r.json()
            assert ENVELOPE <= body.keys() and body["status"] == "error"
            assert body["info"].startswith("Not authorized")


def test_valid_key_works_everywhere(stack):
    for method, path in ROUTES:
        assert stack.request(method, path).status_code == 200, path


def test_cli_keys_scopes_and_revocation(stack):
    out = stack.peon("key", "create", "--scope", "read", "--label", "discord bot")
    assert out.returncode == 0, out.stderr
    fields = dict(line.split(":", 1) for line in out.stdout.strip().splitlines())
    key_id, key = fields["id"].strip(), fields["key"].strip()
    assert key.startswith("peon_")

    assert stack.request("GET", "/api/v1/plans", key=key).status_code == 200
    r = stack.request("PUT", "/api/v1/plans", key=key)
    assert r.status_code == 403 and r.json()["code"] == "auth.scope"

    listing = stack.peon("key", "list").stdout
    assert key_id in listing and "discord bot" in listing and key not in listing

    assert stack.peon("key", "revoke", key_id).returncode == 0
    r = stack.request("GET", "/api/v1/plans", key=key)
    assert r.status_code == 401 and r.json()["code"] == "auth.revoked_key"
    assert stack.peon("key", "revoke", key_id).returncode != 0
    assert "revoked" in stack.peon("key", "list").stdout


def test_keys_are_stored_only_as_hashes(stack):
    db = sqlite3.connect(f"file:{stack.data}/peon.db?mode=ro", uri=True)
    rows = db.execute("SELECT * FROM api_keys").fetchall()
    assert rows
    for row in rows:
        for value in row:
            assert stack.api_key not in str(value) and stack.api_key.encode() not in (value if isinstance(value, bytes) else b"")


def test_changes_are_audited_with_key_and_client_ip(stack):
    stack.request("PUT", "/api/v1/plans")
    stack.request("PUT", "/api/v1/plans", key="nope-nope-nope")
    db = sqlite3.connect(f"file:{stack.data}/peon.db?mode=ro", uri=True)
    rows = db.execute("SELECT at, key_id, client_ip, request_id, method, path, status, result FROM audit ORDER BY id").fetchall()
    ok = [r for r in rows if r[6] == 200 and r[4] == "PUT"]
    refused = [r for r in rows if r[6] == 401]
    assert ok and not refused, "requests without a valid key are in the access log, not the audit"
    assert ok[-1][1] and ok[-1][1].startswith("key_") and ok[-1][2] == "127.0.0.1" and len(ok[-1][3]) == 32
    assert ok[-1][5] == "/api/v1/plans" and ok[-1][0].endswith("Z")
    assert all(r[1] for r in rows)
    # Reads are not audited (but PEON's GET /server/save, which makes a backup).
    assert all(r[4] != "GET" or r[5].startswith("/api/v1/server/save/") for r in rows)


def test_first_run_without_key_generates_one_printed_once(make_stack):
    s = make_stack(api_key=None)
    out = s.output()
    line = [l for l in out.splitlines() if "admin API key" in l]
    assert len(line) == 1
    key = line[0].rsplit(" ", 1)[1]
    assert s.request("GET", "/api/v1/orchestrator", key=key).json()["key"]["scope"] == "admin"
    # No default key exists: PEON's old default is refused.
    assert s.request("GET", "/api/v1/orchestrator", key="Zu88Zu88").status_code == 401
    assert s.stop() == 0
    # The key is in no log file.
    import glob
    for path in glob.glob(s.data + "/log/*"):
        assert key not in open(path, errors="replace").read()


def test_cli_migrate_and_help(stack):
    out = stack.peon("migrate")
    assert out.returncode == 0 and "0001_core" in out.stdout and "0002_lifecycle" in out.stdout
    import os
    from conftest import BIN
    import subprocess
    helptext = subprocess.run([os.path.join(BIN, "peon"), "key", "create", "--help"], capture_output=True, text=True).stdout
    assert "--scope" in helptext and "--label" in helptext
    bad = stack.peon("key", "create", "--scope", "root")
    assert bad.returncode != 0 and "root" in bad.stderr
    missing = subprocess.run([os.path.join(BIN, "peon"), "key", "list", "--data-dir", stack.dir + "/nope"], capture_output=True, text=True)
    assert missing.returncode != 0 and "no Peon database" in missing.stderr
    assert not os.path.exists(stack.dir + "/nope")
