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


def backup_folder(stack, uid):
    game, name = uid.split(".", 1)
    return os.path.join(stack.data, "backups", game, name)


def test_backup_policy_api_applied_to_real_backups(stack):
    uid = f"peontest.{RUN}rp"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
    try:
        policy = stack.request("GET", f"/api/v1/server/backup-policy/{uid}").json()
        assert policy == {"server_uid": uid, "keep_last": 10, "keep_daily": 0, "keep_weekly": 0, "default": True}

        # Hostile bodies: 400 with the JSON envelope, nothing stored.
        for bad in [{}, {"keep_last": 0}, {"keep_last": -1}, {"keep_last": 10001}, {"keep_last": 2**64}, {"keep_last": "2"},
                    {"keep_last": 2.5}, {"keep_last": 1e300}, {"keep_last": None}, {"keep_last": True}, {"keep_last": [2]},
                    {"keep_daily": -1}, {"keep_daily": 3661}, {"keep_weekly": 521}, {"keep_weekly": {"n": 1}},
                    {"keep_hourly": 1}, {"keep_last": 2, "x" * 5000: 1}, [1], "keep_last"]:
            r = stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", json=bad)
            assert r.status_code == 400 and r.json()["status"] == "error", (bad, r.text)
        for raw in [b"not json", b'{"keep_last": 1e999999}', b"\xff\xfe", b'{"keep_last": 2']:
            r = stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", data=raw, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (raw, r.text)
        assert stack.request("GET", f"/api/v1/server/backup-policy/{uid}").json()["default"] is True
        assert stack.request("PUT", f"/api/v1/server/backup-policy/peontest.{RUN}nobody", json={"keep_last": 2}).status_code == 404
        assert stack.request("GET", f"/api/v1/server/backup-policy/peontest.{RUN}nobody").status_code == 404
        assert stack.request("GET", "/api/v1/server/backup-policy/../etc").status_code in (400, 404)
        read = stack.request("POST", "/api/v1/keys", json={"scope": "read", "label": "policy reader"}).json()["key"]
        assert stack.request("GET", f"/api/v1/server/backup-policy/{uid}", key=read).status_code == 200
        assert stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", key=read, json={"keep_last": 1}).status_code == 403

        made = []
        for _ in range(3):
            r = stack.request("POST", f"/api/v1/server/backup/{uid}")
            assert r.status_code == 201, r.text
            made.append(r.json())
        r = stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", json={"keep_last": 2})
        assert r.status_code == 200, r.text
        assert r.json() == {"server_uid": uid, "keep_last": 2, "keep_daily": 0, "keep_weekly": 0, "default": False,
                            "deleted": [made[0]["id"]]}
        assert [b["id"] for b in stack.request("GET", f"/api/v1/server/backups/{uid}").json()] == [made[2]["id"], made[1]["id"]]
        assert not os.path.exists(os.path.join(backup_folder(stack, uid), made[0]["name"]))

        # Every backup applies the policy after itself.
        r = stack.request("POST", f"/api/v1/server/backup/{uid}")
        assert r.status_code == 201, r.text
        newest = r.json()
        assert [b["id"] for b in stack.request("GET", f"/api/v1/server/backups/{uid}").json()] == [newest["id"], made[2]["id"]]
        assert sorted(os.listdir(backup_folder(stack, uid))) == sorted([newest["name"], made[2]["name"]])

        # Members left out keep their value; the change is audited.
        r = stack.request("PUT", f"/api/v1/server/backup-policy/{uid}", json={"keep_weekly": 4})
        assert r.status_code == 200 and r.json()["keep_last"] == 2 and r.json()["keep_weekly"] == 4 and r.json()["deleted"] == []
        entries = stack.request("GET", "/api/v1/audit?limit=100").json()["entries"]
        assert [e["status"] for e in entries if e["path"] == f"/api/v1/server/backup-policy/{uid}" and e["method"] == "PUT"][:2] == [200, 200]
    finally:
        stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})


def test_retention_keeps_last_daily_and_weekly(stack):
    """Backups with forged times (rows and files put straight into the stack's database and backup
    folder): the scheduler keeps what the policy says, computed here with Python's own calendar."""
    import datetime
    import time
    uid = f"peontest.{RUN}rd"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
    try:
        folder = backup_folder(stack, uid)
        os.makedirs(folder, exist_ok=True)
        now = int(time.time())
        midnight = now - now % 86400
        # One backup at midnight UTC of each of the last 30 days, a later one on yesterday, one a
        # second before today began, and two on the same second (the higher id is the newer).
        times = [midnight - k * 86400 for k in range(30)] + [midnight - 86400 + 3600, midnight - 1, midnight - 20 * 86400]
        db = sqlite3.connect(os.path.join(stack.data, "peon.db"))
        rows = []
        for n, t in enumerate(times):
            name = f"{uid}-forged-{n}.tar.zst"
            open(os.path.join(folder, name), "wb").write(b"x")
            cur = db.execute("INSERT INTO backups (server_uid, path, bytes, created_at, sha256, format) VALUES (?, ?, 1, ?, ?, 'tar.zst')",
                             (uid, f"peontest/{uid.split('.', 1)[1]}/{name}", t, "0" * 64))
            rows.append((cur.lastrowid, t, name))
        db.commit()
        db.close()

        keep_last, keep_daily, keep_weekly = 2, 3, 5
        ordered = sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)

        def kept(now):
            day = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).date()
            today = day(now)
            keep = {r[0] for r in ordered[:keep_last]}
            days, weeks = set(), set()
            for r in ordered:
                d = day(r[1])
                if (today - d).days < keep_daily and d not in days:
                    days.add(d)
                    keep.add(r[0])
                week = d - datetime.timedelta(days=d.weekday())
                if (today - datetime.timedelta(days=today.weekday()) - week).days < 7 * keep_weekly and week not in weeks:
                    weeks.add(week)
                    keep.add(r[0])
            return keep

        r = stack.request("PUT", f"/api/v1/server/backup-policy/{uid}",
                          json={"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly})
        assert r.status_code == 200, r.text
        # The scheduler decided at some instant between `now` and now; a UTC midnight in between
        # leaves two right answers.
        keep = next((k for k in (kept(now), kept(int(time.time()))) if r.json()["deleted"] == [
            x[0] for x in sorted(rows, key=lambda x: (x[1], x[0])) if x[0] not in k]), None)
        assert keep is not None, (r.json(), kept(now))
        listed = [b["id"] for b in stack.request("GET", f"/api/v1/server/backups/{uid}").json()]
        assert listed == [x[0] for x in ordered if x[0] in keep]
        assert sorted(os.listdir(folder)) == sorted(x[2] for x in rows if x[0] in keep)
        assert 6 <= len(keep) <= keep_last + keep_daily + keep_weekly
    finally:
        stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})


def test_backups_outlive_an_erase_listed_and_deleted_by_uid(stack):
    # Backups are the user's safety net: an erase keeps them unless asked; they are listed and
    # deleted by the uid of the server that is gone.
    uid = f"peontest.{RUN}ob"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
    ids = []
    for _ in range(2):
        r = stack.request("POST", f"/api/v1/server/backup/{uid}")
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
    assert r.status_code == 200 and "deleted_backups" not in r.json(), r.text
    assert not os.path.exists(server_dir(stack, uid))
    listed = stack.request("GET", f"/api/v1/server/backups/{uid}")
    assert listed.status_code == 200 and [b["id"] for b in listed.json()] == ids[::-1], listed.text
    read = stack.request("POST", "/api/v1/keys", json={"scope": "read", "label": "gone reader"}).json()["key"]
    assert stack.request("GET", f"/api/v1/server/backups/{uid}", key=read).status_code == 200
    assert stack.request("DELETE", f"/api/v1/server/backup/{uid}", key=read, json={"id": ids[0]}).status_code == 403
    r = stack.request("DELETE", f"/api/v1/server/backup/{uid}", json={"id": ids[0]})
    assert r.status_code == 200, r.text
    assert [b["id"] for b in stack.request("GET", f"/api/v1/server/backups/{uid}").json()] == [ids[1]]
    # The rest go with an erase that asks for it, files or not.
    r = stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", json={"delete_backups": True})
    assert r.status_code == 200 and r.json()["deleted_backups"] == [ids[1]], r.text
    assert os.listdir(backup_folder(stack, uid)) == []
    assert stack.request("GET", f"/api/v1/server/backups/{uid}").status_code == 404
    assert stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", json={"delete_backups": True}).status_code == 404
    # A live server's destroy takes its backups only when asked too.
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
    backup = stack.request("POST", f"/api/v1/server/backup/{uid}").json()["id"]
    r = stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True, "delete_backups": True})
    assert r.status_code == 200 and r.json()["deleted_backups"] == [backup], r.text
    assert stack.request("GET", f"/api/v1/server/backups/{uid}").status_code == 404
