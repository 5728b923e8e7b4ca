"""Plans through the real stack: bundled catalog, detail, refresh from a local HTTP mirror."""


def test_bundled_plans_listed_sorted(stack):
    plans = stack.request("GET", "/api/v1/plans").json()
    assert len(plans) >= 11
    assert [p["title"] for p in plans] == sorted(p["title"] for p in plans)
    assert all(list(p) == ["title", "game_uid", "plan_url"] for p in plans)
    assert "peontest" in {p["game_uid"] for p in plans}


def test_plan_detail_order_and_missing(stack):
    r = stack.request("GET", "/api/v1/plan/peontest")
    assert r.status_code == 200
    assert list(r.json().items()) == [("SERVER_NAME", ""), ("PASSWORD", ""), ("MAX_PLAYERS", "8"), ("MOTD", "Welcome to Peon"),
                                      ("MODE", "serve"), ("CRASH_AFTER", "1"), ("STOP_SECONDS", "0"),
                                      ("description", "A PEON test game server (busybox).")]
    r = stack.request("GET", "/api/v1/plan/nosuchgame")
    assert r.status_code == 404 and r.json()["info"] == "Could not get the settings for [nosuchgame]"


def test_refresh_from_mirror_reports_bad_plans(stack):
    r = stack.request("PUT", "/api/v1/plans")
    assert r.status_code == 200, r.text
    body = r.json()
    failed = {f["game_uid"]: f["error"] for f in body["failed"]}
    assert "broken" in failed and "huge" in failed and "missing" in failed
    assert "larger than" in failed["huge"] and "404" in failed["missing"]
    # New plans appear once in new_recipies; the mirror's valheim replaces the bundled one.
    listed = {p["game_uid"]: p for p in stack.request("GET", "/api/v1/plans").json()}
    assert listed["remotegame"]["title"] == "Remote Game"
    assert "broken" not in listed and "huge" not in listed
    assert stack.request("GET", "/api/v1/plan/valheim").json()["description"] == "Remote valheim"
    again = stack.request("PUT", "/api/v1/plans").json()
    assert again["new_recipies"] == {}


def test_unreachable_mirror_keeps_catalog(make_stack):
    s = make_stack(env={"PEON_PLANS_URL": "http://127.0.0.1:9"})
    before = s.request("GET", "/api/v1/plans").json()
    r = s.request("PUT", "/api/v1/plans")
    assert r.status_code == 502 and r.json()["code"] == "plans.index_unavailable"
    assert s.request("GET", "/api/v1/plans").json() == before
