"""A plan's actions/ reach its servers: copied on create, refreshed on update (any mode), the
user's own files kept, planted links replaced rather than written through."""
import os

from conftest import RUN

SETTINGS = {"SERVER_NAME": "Actions", "PASSWORD": "pw"}


def test_actions_are_copied_on_create_and_refreshed_on_update(make_stack):
    s = make_stack()
    uid = f"peontest.{RUN}act"
    plan_actions = os.path.join(s.data, "plans", "peontest", "actions")
    r = s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
    assert r.status_code == 200, r.text
    actions = os.path.join(s.data, "servers", "peontest", f"{RUN}act", "actions")
    start = os.path.join(actions, "server_start")
    original = open(os.path.join(plan_actions, "server_start"), "rb").read()
    assert open(start, "rb").read() == original
    st = os.lstat(start)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 1000, 0o755)

    # What a game (or its user) may leave in actions/: own files, the runtime's marker, a planted link.
    outside = os.path.join(s.dir, "outside.txt")
    open(outside, "w").write("untouched")
    open(os.path.join(actions, "mine.sh"), "w").write("mine")
    open(os.path.join(actions, ".update"), "w").write("")
    os.unlink(start)
    os.symlink(outside, start)
    outside_dir = os.path.join(s.dir, "outside-dir")
    os.mkdir(outside_dir)
    os.symlink(outside_dir, os.path.join(actions, "lib"))

    # The plan changes on disk; a refresh loads it, an update (even image mode) brings it to the server.
    with open(os.path.join(plan_actions, "server_start"), "ab") as f:
        f.write(b"# v2\n")
    os.makedirs(os.path.join(plan_actions, "lib"))
    open(os.path.join(plan_actions, "lib", "extra.sh"), "w").write("EXTRA=1\n")
    assert s.request("PUT", "/api/v1/plans").status_code == 200
    r = s.request("PUT", f"/api/v1/server/update/{uid}", json={"mode": "image"})
    assert r.status_code == 200, r.text
    assert not os.path.islink(start) and open(start, "rb").read() == original + b"# v2\n"
    assert open(os.path.join(actions, "lib", "extra.sh")).read() == "EXTRA=1\n"
    assert not os.path.islink(os.path.join(actions, "lib")) and os.stat(os.path.join(actions, "lib")).st_uid == 1000
    assert os.listdir(outside_dir) == []
    assert open(os.path.join(actions, "mine.sh")).read() == "mine"
    assert os.path.exists(os.path.join(actions, ".update"))
    assert open(outside).read() == "untouched"
    assert not [n for n in os.listdir(actions) if n.startswith(".peon-new-")]
    s.request("DELETE", f"/api/v1/server/eradicate/{uid}")
