"""The files API through the real stack (nginx over TLS, the API workers, the scheduler, the
server's node): list, read, write and delete in a server's config/ and user/, actions/ for admin
keys and read-only, and every refusal as a JSON 4xx: hostile paths, links a game planted at a name
or a folder, FIFOs, files over PEON_FILE_MAX, and the wrong key."""
import hashlib
import os
import time

import pytest

from conftest import RUN

SETTINGS = {"SERVER_NAME": "Files", "PASSWORD": "pw"}


def server_dir(stack, uid):
    return os.path.join(stack.data, "servers", *uid.split("."))


@pytest.fixture
def server(stack):
    uid = f"peontest.{RUN}fl"
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
    assert r.status_code == 200, r.text
    yield uid
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=60)


def put(stack, uid, path, body, **kw):
    return stack.request("PUT", f"/api/v1/server/file/{uid}", params={"path": path}, data=body,
                         headers={"Content-Type": "application/octet-stream"}, **kw)


def get(stack, uid, path, **kw):
    return stack.request("GET", f"/api/v1/server/file/{uid}", params={"path": path}, **kw)


def listing(stack, uid, path=None, **kw):
    return stack.request("GET", f"/api/v1/server/files/{uid}", params={} if path is None else {"path": path}, **kw)


def test_list_read_write_delete(stack, server):
    home = server_dir(stack, server)
    r = listing(stack, server)
    assert r.status_code == 200, r.text
    assert {e["name"] for e in r.json()["entries"]} == {"actions", "config", "user"}
    assert all(e["type"] == "directory" for e in r.json()["entries"])

    body = bytes(range(256)) * 1000 + b"\x00end"
    r = put(stack, server, "user/mods/pack one/a.bin", body)
    assert r.status_code == 200, r.text
    assert r.json()["size"] == len(body) and r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    on_disk = os.path.join(home, "user", "mods", "pack one", "a.bin")
    assert open(on_disk, "rb").read() == body
    assert os.stat(on_disk).st_uid == 1000 and os.stat(os.path.dirname(on_disk)).st_uid == 1000  # the game's user

    r = get(stack, server, "user/mods/pack one/a.bin")
    assert r.status_code == 200 and r.content == body
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="a.bin"')

    r = listing(stack, server, "user/mods/pack one")
    assert r.status_code == 200, r.text
    [entry] = r.json()["entries"]
    assert entry["name"] == "a.bin" and entry["type"] == "file" and entry["size"] == len(body)
    assert entry["modified"].endswith("Z") and not r.json()["truncated"]

    # An edit of a config file lands on disk, atomically (no temporary name left beside it).
    r = put(stack, server, "config/server.cfg", b"name=Edited\n")
    assert r.status_code == 200, r.text
    assert open(os.path.join(home, "config", "server.cfg")).read() == "name=Edited\n"
    assert not [n for n in os.listdir(os.path.join(home, "config")) if n.startswith(".peon-")]

    # An upload is audited with its key; a read is not a change.
    rows = stack.request("GET", "/api/v1/audit", params={"limit": 50}).json()["entries"]
    assert any(row["method"] == "PUT" and row["path"] == f"/api/v1/server/file/{server}" and row["status"] == 200 for row in rows)

    assert stack.request("DELETE", f"/api/v1/server/file/{server}", params={"path": "user/mods"}).status_code == 200
    assert not os.path.exists(os.path.join(home, "user", "mods"))
    r = get(stack, server, "user/mods/pack one/a.bin")
    assert r.status_code == 404 and r.json()["code"] == "file.not_found", r.text


@pytest.mark.parametrize("path", [
    "../../peon.db", "/etc/passwd", "config/../../../peon.db", "data/world", "config//x", "config/./x",
    "config/x\x00y", "config/x\ny", "peon-server.json", "CONFIG/x", "user/" + "a" * 256, "user/" + "a/" * 40 + "x",
    "config/\x1b[2J",
])
def test_hostile_paths_are_refused(stack, server, path):
    for r in [get(stack, server, path), put(stack, server, path, b"x"),
              stack.request("DELETE", f"/api/v1/server/file/{server}", params={"path": path}), listing(stack, server, path)]:
        assert r.status_code == 400 and r.json()["code"] == "request.invalid", (path, r.status_code, r.text)
    assert os.path.isfile(os.path.join(stack.data, "peon.db"))


def test_what_a_game_planted_is_refused_never_followed(stack, server):
    home = server_dir(stack, server)
    secret = os.path.join(stack.data, f"secret-{RUN}")
    secret_dir = secret + ".d"
    open(secret, "w").write("keep me")
    os.makedirs(secret_dir, exist_ok=True)
    open(os.path.join(secret_dir, "stolen"), "w").write("secret")
    try:
        os.symlink(secret, os.path.join(home, "config", "linked"))
        os.symlink(secret_dir, os.path.join(home, "user", "escape"))
        os.mkfifo(os.path.join(home, "config", "fifo"))
        with open(os.path.join(home, "user", "huge"), "wb") as f:
            f.truncate(64 << 20)  # sparse, over PEON_FILE_MAX (16 MiB)

        kinds = {e["name"]: e["type"] for e in listing(stack, server, "config").json()["entries"]}
        assert kinds["linked"] == "link" and kinds["fifo"] == "fifo"

        for path in ["config/linked", "config/fifo", "user/escape/stolen", "user/escape"]:
            started = time.time()
            r = get(stack, server, path)
            assert r.status_code == 409 and r.json()["code"] == "file.refused", (path, r.text)
            assert time.time() - started < 10
        r = listing(stack, server, "user/escape")
        assert r.status_code == 409 and r.json()["code"] == "file.refused", r.text
        r = get(stack, server, "user/huge")
        assert r.status_code == 413 and r.json()["code"] == "file.too_large", r.text

        # A write at the link's name replaces the link; below a linked folder it is refused.
        assert put(stack, server, "config/linked", b"mine").status_code == 200
        assert open(secret).read() == "keep me" and not os.path.islink(os.path.join(home, "config", "linked"))
        r = put(stack, server, "user/escape/planted", b"x")
        assert r.status_code == 409 and not os.path.exists(os.path.join(secret_dir, "planted")), r.text
        # A delete removes the link itself, never what it points at.
        assert stack.request("DELETE", f"/api/v1/server/file/{server}", params={"path": "user/escape"}).status_code == 200
        assert open(os.path.join(secret_dir, "stolen")).read() == "secret"
    finally:
        os.unlink(secret)
        for name in os.listdir(secret_dir):
            os.unlink(os.path.join(secret_dir, name))
        os.rmdir(secret_dir)


def test_limits_and_scopes(stack, server):
    # Over PEON_FILE_MAX (16 MiB by default): nginx refuses the upload before any worker reads it.
    r = put(stack, server, "user/big.bin", b"\x00" * ((16 << 20) + 1), timeout=60)
    assert r.status_code == 413 and r.json()["code"] == "request.too_large", r.text
    assert not os.path.exists(os.path.join(server_dir(stack, server), "user", "big.bin"))
    # At the limit it goes through.
    r = put(stack, server, "user/big.bin", b"\x01" * (16 << 20), timeout=60)
    assert r.status_code == 200 and r.json()["size"] == 16 << 20, r.text

    for r in [stack.request("GET", f"/api/v1/server/file/{server}"),
              put(stack, server, "", b"x")]:
        assert r.status_code == 400 and r.json()["code"] == "request.invalid", r.text
    assert get(stack, server, "config/absent").json()["code"] == "file.not_found"
    assert get(stack, "peontest.nosuchserver", "config/x").status_code == 404

    # actions/: admin keys read it, nobody writes it.
    assert get(stack, server, "actions/server_start").status_code in (200, 404)
    r = put(stack, server, "actions/server_start", b"#!/bin/sh\nrm -rf /\n")
    assert r.status_code == 403 and r.json()["code"] == "file.read_only", r.text
    r = stack.request("DELETE", f"/api/v1/server/file/{server}", params={"path": "config"})
    assert r.status_code == 409 and r.json()["code"] == "file.refused", r.text

    operate = stack.request("POST", "/api/v1/keys", json={"scope": "operate"}).json()["key"]
    read = stack.request("POST", "/api/v1/keys", json={"scope": "read"}).json()["key"]
    assert {e["name"] for e in listing(stack, server, key=operate).json()["entries"]} == {"config", "user"}
    assert put(stack, server, "config/op.cfg", b"ok", key=operate).status_code == 200
    assert get(stack, server, "config/op.cfg", key=operate).content == b"ok"
    r = get(stack, server, "actions/server_start", key=operate)
    assert r.status_code == 403 and r.json()["code"] == "auth.scope", r.text
    for r in [get(stack, server, "config/op.cfg", key=read), listing(stack, server, key=read),
              put(stack, server, "config/op.cfg", b"no", key=read), get(stack, server, "config/op.cfg", key=None)]:
        assert r.status_code in (401, 403), r.text
    assert open(os.path.join(server_dir(stack, server), "config", "op.cfg")).read() == "ok"
