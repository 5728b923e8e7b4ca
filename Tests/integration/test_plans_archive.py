"""PEON_PLANS_URL pointing at a .tar.gz of a warplans tree (like a GitHub archive of
peon-warplans): good plans load with their actions, bad plans are reported, and an archive with a
hostile member is refused whole, leaving the previous catalog (rows and files) in place."""
import hashlib
import io
import json
import os
import sqlite3
import tarfile

import jsonschema
import pytest

from conftest import PlanServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA = json.load(open(os.path.join(ROOT, "docs", "plan.schema.json")))
TOP = "peon-warplans-main"


def plan(uid, image="umlatt/steamcmd", **metadata):
    return {"metadata": {"game_uid": uid, "warcamp": "default", "version": "1.0.0", "description": f"Archive {uid}",
                         "mode": "steamcmd", "hostname": f"peon.warcamp.{uid}", "image": image, **metadata},
            "ports": [[{"PORT": ["7777", "udp"]}]], "environment": {"STEAM_ID": "1", "SERVER_NAME": None},
            "volumes": {"~!/actions": "/actions", "~!/data": "/home/steam/steamcmd/data"}}


START = b"#!/usr/bin/env bash\nexec \"${GAME_DIR:-/home/steam/steamcmd/data}/game\" -port \"$PORT\"\n"


def good_tree(version=1):
    """path -> bytes of a warplans tree: two good plans, one without server_start, one broken."""
    index = [{"title": "Alpha", "game_uid": "alpha", "plan_url": "a"}, {"title": "Beta", "game_uid": "beta", "plan_url": "b"},
             {"title": "No Start", "game_uid": "nostart", "plan_url": "n"}, {"title": "Broken", "game_uid": "broken", "plan_url": "x"}]
    return {
        "plans.json": json.dumps(index).encode(),
        "README.md": b"warplans\n",
        "alpha/plan.json": json.dumps(plan("alpha")).encode(),
        "alpha/README.md": b"alpha\n",
        "alpha/actions/server_start": START + b"# version %d\n" % version,
        "alpha/actions/init_custom": b"#!/bin/sh\napt-get install -y libatomic1\n",
        "alpha/actions/lib/common.sh": b"PEON=1\n",
        "beta/plan.json": json.dumps(plan("beta", image="peon/beta:1")).encode(),
        "nostart/plan.json": json.dumps(plan("nostart")).encode(),
        "broken/plan.json": json.dumps({"metadata": {"game_uid": "broken", "image": "x"}, "volumes": {"/etc": "/etc"}}).encode(),
    }


def tar_gz(tree, extra=()):
    """A GitHub-style archive: one top folder holding the tree; `extra` is (TarInfo, bytes|None) added as is."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo(TOP)
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for path, data in tree.items():
            info = tarfile.TarInfo(f"{TOP}/{path}")
            info.size, info.mode = len(data), 0o755 if "/actions/" in path else 0o644
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(name, kind, **attrs):
    info = tarfile.TarInfo(name)
    info.type = kind
    for k, v in attrs.items():
        setattr(info, k, v)
    return info


def test_archive_plans_match_schema():
    for path, data in good_tree().items():
        if path.endswith("plan.json") and not path.startswith("broken"):
            assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(json.loads(data))) == [], path
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(json.loads(good_tree()["broken/plan.json"])))


@pytest.fixture
def archive_stack(make_stack):
    server = PlanServer({"/warplans.tar.gz": tar_gz(good_tree())})
    stack = make_stack(env={"PEON_PLANS_URL": server.url + "/warplans.tar.gz"})
    stack.server = server
    yield stack
    server.close()


def catalog(stack):
    """Rows and files as the store holds them, and the kept tree, to compare before and after."""
    db = sqlite3.connect(f"file:{stack.data}/peon.db?mode=ro", uri=True)
    rows = db.execute("SELECT game_uid, document, source FROM plans ORDER BY game_uid").fetchall()
    files = db.execute("SELECT game_uid, path, executable, content FROM plan_files ORDER BY game_uid, path").fetchall()
    db.close()
    tree = sorted(os.path.relpath(os.path.join(d, f), stack.data) for d, _, fs in os.walk(os.path.join(stack.data, "plans-remote"))
                  for f in fs)
    return rows, files, tree


def test_archive_loads_good_plans_and_reports_the_rest(archive_stack):
    s = archive_stack
    r = s.request("PUT", "/api/v1/plans")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"alpha", "beta"} <= set(body["new_recipies"])
    failed = {f["game_uid"]: f for f in body["failed"]}
    assert "server_start is required by the steamcmd runtime" in failed["nostart"]["error"]
    assert any("inside the server directory" in reason for reason in failed["broken"]["reasons"])
    assert failed["nostart"]["source"].startswith(s.server.url)  # no temporary path in reports
    listed = {p["game_uid"] for p in s.request("GET", "/api/v1/plans").json()}
    assert {"alpha", "beta", "peontest", "valheim"} <= listed and not {"nostart", "broken"} & listed
    rows, files, tree = catalog(s)
    alpha = {path: (executable, content) for uid, path, executable, content in files if uid == "alpha"}
    assert set(alpha) == {"server_start", "init_custom", "lib/common.sh"}
    assert alpha["server_start"] == (1, START + b"# version 1\n")
    assert "plans-remote/alpha/actions/server_start" in tree and "plans-remote/plans.json" in tree
    assert os.listdir(os.path.join(s.data, "tmp")) == []
    # The bundled plans came with their actions too.
    assert any(uid == "valheim" and path == "server_start" for uid, path, _, _ in files)

    # A newer archive replaces the scripts; a plan that lost its server_start keeps its previous version.
    tree2 = good_tree(version=2)
    tree2["beta/plan.json"] = json.dumps(plan("beta", image="umlatt/steamcmd")).encode()  # now needs server_start
    s.server.files["/warplans.tar.gz"] = tar_gz(tree2)
    r = s.request("PUT", "/api/v1/plans")
    assert r.status_code == 200, r.text
    assert "beta" in {f["game_uid"] for f in r.json()["failed"]}
    rows2, files2, _ = catalog(s)
    assert dict((u, d) for u, d, _ in rows2)["beta"] == dict((u, d) for u, d, _ in rows)["beta"]
    assert (1, START + b"# version 2\n") in [(e, c) for u, p, e, c in files2 if u == "alpha" and p == "server_start"]


def hostile_members():
    evil = b"evil\n"
    yield "symlink", [(member(f"{TOP}/alpha/actions/link", tarfile.SYMTYPE, linkname="/etc/passwd"), None)], "symbolic link"
    yield "hard link", [(member(f"{TOP}/alpha/actions/hard", tarfile.LNKTYPE, linkname=f"{TOP}/plans.json"), None)], "hard link"
    yield "fifo", [(member(f"{TOP}/alpha/actions/pipe", tarfile.FIFOTYPE), None)], "FIFO"
    yield "device", [(member(f"{TOP}/alpha/actions/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None)], "device"
    yield "absolute", [(member("/tmp/peon-evil", tarfile.REGTYPE, size=len(evil)), evil)], "absolute path"
    yield "dot-dot", [(member(f"{TOP}/../../peon-evil", tarfile.REGTYPE, size=len(evil)), evil)], "'..'"


@pytest.mark.parametrize("kind", ["symlink", "hard link", "fifo", "device", "absolute", "dot-dot", "too many", "too large"])
def test_hostile_archive_is_refused_and_the_catalog_kept(archive_stack, kind):
    s = archive_stack
    assert s.request("PUT", "/api/v1/plans").status_code == 200
    before = catalog(s)
    listed = s.request("GET", "/api/v1/plans").json()
    if kind == "too many":
        archive, reason = tar_gz(good_tree(), [(member(f"{TOP}/filler/f{i}", tarfile.REGTYPE), b"") for i in range(20001)]), \
            "more than 20000 entries"
    elif kind == "too large":
        big = member(f"{TOP}/alpha/actions/big", tarfile.REGTYPE, size=(512 << 20) + 1)
        archive, reason = tar_gz(good_tree(), [(big, b"\0" * ((512 << 20) + 1))]), "more than 536870912 bytes"
    else:
        extra, reason = next((m, why) for name, m, why in hostile_members() if name == kind)
        archive = tar_gz(good_tree(version=3), extra)
    s.server.files["/warplans.tar.gz"] = archive
    r = s.request("PUT", "/api/v1/plans")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "plans.archive_refused" and reason in body["info"], body
    assert body["failed"][0]["source"].endswith("/warplans.tar.gz")
    assert catalog(s) == before
    assert s.request("GET", "/api/v1/plans").json() == listed
    assert os.listdir(os.path.join(s.data, "tmp")) == []
    assert not os.path.exists("/tmp/peon-evil") and not os.path.exists(os.path.join(s.data, "..", "peon-evil"))


def test_a_pinned_archive_loads_only_with_its_checksum(make_stack):
    """PEON_PLANS_SHA256: the archive the operator checked, or nothing changes."""
    good = tar_gz(good_tree())
    server = PlanServer({"/warplans.tar.gz": good})
    try:
        s = make_stack(env={"PEON_PLANS_URL": server.url + "/warplans.tar.gz", "PEON_PLANS_SHA256": hashlib.sha256(good).hexdigest()})
        r = s.request("PUT", "/api/v1/plans")
        assert r.status_code == 200 and "alpha" in r.json()["new_recipies"], r.text
        before = catalog(s)
        server.files["/warplans.tar.gz"] = tar_gz(good_tree(version=3))  # changed upstream, not re-pinned
        r = s.request("PUT", "/api/v1/plans")
        assert r.status_code == 422 and r.json()["code"] == "plans.archive_refused", r.text
        assert "PEON_PLANS_SHA256" in r.json()["info"]
        assert catalog(s) == before
    finally:
        server.close()


def test_plans_over_plain_http_from_elsewhere_are_refused_at_start(make_stack):
    with pytest.raises(RuntimeError, match="PEON_PLANS_URL must be an https:// URL"):
        make_stack(env={"PEON_PLANS_URL": "http://plans.example.com/warplans.tar.gz"})


def test_mirror_folder_brings_server_start_and_init_custom(make_stack):
    """A mirror URL (not an archive): actions/server_start and init_custom are fetched beside each
    plan.json; a steamcmd plan whose mirror has no server_start is reported."""
    index = [{"title": "Alpha", "game_uid": "alpha", "plan_url": "a"}, {"title": "No Start", "game_uid": "nostart", "plan_url": "n"}]
    server = PlanServer({
        "/mirror/plans.json": json.dumps(index).encode(),
        "/mirror/alpha/plan.json": json.dumps(plan("alpha")).encode(),
        "/mirror/alpha/actions/server_start": START,
        "/mirror/alpha/actions/init_custom": b"#!/bin/sh\n",
        "/mirror/nostart/plan.json": json.dumps(plan("nostart")).encode(),
    })
    try:
        s = make_stack(env={"PEON_PLANS_URL": server.url + "/mirror"})
        r = s.request("PUT", "/api/v1/plans")
        assert r.status_code == 200, r.text
        assert "alpha" in r.json()["new_recipies"]
        failed = {f["game_uid"]: f["error"] for f in r.json()["failed"]}
        assert "server_start is required" in failed["nostart"]
        _, files, _ = catalog(s)
        assert [(p, e, c) for u, p, e, c in files if u == "alpha"] == [("init_custom", 1, b"#!/bin/sh\n"), ("server_start", 1, START)]
    finally:
        server.close()
