"""Backups that restore: archives of actions, config and user (never data) made by the scheduler,
checksummed and verified, restored atomically (refusing tampered or hostile archives), listed,
deleted, and PEON's save zip download."""
import io
import os
import sqlite3
import tarfile
import zipfile

import pytest

from conftest import RUN

SETTINGS = {"SERVER_NAME": "Backups", "PASSWORD": "pw"}


def server_dir(stack, uid):
    game, name = uid.split(".", 1)
    return os.path.join(stack.data, "servers", game, name)


def test_backup_restore_list_delete(stack):
    uid = f"peontest.{RUN}bk"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS).status_code == 200
    try:
        user = os.path.join(server_dir(stack, uid), "user")
        os.makedirs(os.path.join(user, "world"), exist_ok=True)
        open(os.path.join(user, "world", "map.txt"), "w").write("v1")
        os.makedirs(os.path.join(server_dir(stack, uid), "data"), exist_ok=True)
        open(os.path.join(server_dir(stack, uid), "data", "game.bin"), "w").write("install")

        r = stack.request("POST", f"/api/v1/server/backup/{uid}")
        assert r.status_code == 201, r.text
        backup = r.json()
        assert backup["format"] == "tar.zst" and backup["size"] > 0 and len(backup["sha256"]) == 64
        assert backup["name"].startswith(uid + "-") and backup["name"].endswith(".tar.zst")
        listed = stack.request("GET", f"/api/v1/server/backups/{uid}").json()
        assert listed[0]["id"] == backup["id"]

        # The world moves on, then goes back to the backup's state.
        open(os.path.join(user, "world", "map.txt"), "w").write("v2")
        open(os.path.join(user, "world", "new.txt"), "w").write("later")
        r = stack.request("PUT", f"/api/v1/server/restore/{uid}", json={"id": backup["id"]})
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        assert open(os.path.join(user, "world", "map.txt")).read() == "v1"
        assert not os.path.exists(os.path.join(user, "world", "new.txt"))
        assert os.stat(os.path.join(user, "world", "map.txt")).st_uid == 1000
        assert open(os.path.join(server_dir(stack, uid), "data", "game.bin")).read() == "install"  # data is never touched

        # A changed archive is refused by its checksum; a hostile one (a symlink member) by the
        # extractor: nothing of the server changes either way.
        path = os.path.join(stack.data, "backups", "peontest", uid.split(".", 1)[1], backup["name"])
        original = open(path, "rb").read()
        open(path, "ab").write(b"tampered")
        r = stack.request("PUT", f"/api/v1/server/restore/{uid}", json={"id": backup["id"]})
        assert r.status_code == 502 and "checksum" in r.json()["info"], r.text
        hostile = io.BytesIO()
        with tarfile.open(fileobj=hostile, mode="w") as tar:
            link = tarfile.TarInfo("user/world/map.txt")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
        open(path, "wb").write(hostile.getvalue())
        import hashlib
        db = sqlite3.connect(os.path.join(stack.data, "peon.db"))
        db.execute("UPDATE backups SET sha256 = ? WHERE id = ?", (hashlib.sha256(hostile.getvalue()).hexdigest(), backup["id"]))
        db.commit()
        r = stack.request("PUT", f"/api/v1/server/restore/{uid}", json={"id": backup["id"]})
        assert r.status_code == 502 and "symbolic link" in r.json()["info"], r.text
        assert open(os.path.join(user, "world", "map.txt")).read() == "v1"
        assert stack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] == "running"
        open(path, "wb").write(original)

        for bad in [{"id": "x"}, {"id": -1}, {"id": 1e300}, {}, {"id": None}, {"id": [1]}, {"id": "1; rm -rf /"}]:
            r = stack.request("PUT", f"/api/v1/server/restore/{uid}", json=bad)
            assert r.status_code == 400, (bad, r.text)
        assert stack.request("PUT", f"/api/v1/server/restore/{uid}", json={"id": 999999}).status_code == 404

        r = stack.request("DELETE", f"/api/v1/server/backup/{uid}", json={"id": backup["id"]})
        assert r.status_code == 200, r.text
        assert stack.request("GET", f"/api/v1/server/backups/{uid}").json() == []
        assert not os.path.exists(path)
    finally:
        stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})


def test_save_download_and_json(stack):
    uid = f"peontest.{RUN}sv"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS).status_code == 200
    try:
        os.makedirs(os.path.join(server_dir(stack, uid), "user"), exist_ok=True)
        open(os.path.join(server_dir(stack, uid), "user", "save.dat"), "w").write("progress")
        r = stack.request("GET", f"/api/v1/server/save/{uid}")
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip", r.text[:300]
        assert r.headers["Content-Disposition"].startswith(f"attachment; filename={uid}-")
        names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        assert "user/save.dat" in names and not any(n.startswith("data/") for n in names)
        r = stack.request("GET", f"/api/v1/server/save/{uid}", headers={"Accept": "application/json"})
        assert r.status_code == 200 and r.json()["backup"]["format"] == "zip", r.text
    finally:
        stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})
