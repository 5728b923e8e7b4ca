"""docs/plan.schema.json: every bundled plan passes it, and Peon's loader (through PUT /plans on the
real stack) accepts and refuses exactly what the schema accepts and refuses."""
import copy
import json
import os

import jsonschema
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA = json.load(open(os.path.join(ROOT, "docs", "plan.schema.json")))
PLANS = os.path.join(ROOT, "plans")


def schema_errors(document):
    return [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(document)]


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("game", sorted(g for g in os.listdir(PLANS) if os.path.isfile(os.path.join(PLANS, g, "plan.json"))))
def test_bundled_plan_matches_schema(game):
    document = json.load(open(os.path.join(PLANS, game, "plan.json")))
    assert schema_errors(document) == []
    assert document["metadata"]["game_uid"] == game


BASE = {"metadata": {"game_uid": "GAME", "image": "peon/test:1", "description": "x"},
        "ports": [[{"PORT": ["7777", "udp"]}]], "environment": {"SERVER_NAME": None, "MAX_PLAYERS": "8"},
        "volumes": {"~!/data": "/data"}}


def variant(change):
    document = copy.deepcopy(BASE)
    change(document)
    return document


def set_in(path, value):
    def change(document):
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def drop(key):
    return lambda document: document.pop(key)


# name -> (change, valid)
CASES = {
    "good_minimal": (lambda d: None, True),
    "good_rich_env": (set_in(["environment", "PASSWORD"], {"label": "Password", "required": True, "type": "password"}), True),
    "good_numbers": (set_in(["environment", "SLOTS"], 8), True),
    "good_debian": (lambda d: d["metadata"].update(runtime="debian", packages=["libatomic1", "openjdk-17-jre-headless"]), True),
    "good_steamcmd_image": (lambda d: d["metadata"].update(image="umlatt/steamcmd:latest", packages=["wine"]), True),
    "good_caps": (set_in(["metadata", "capabilities"], ["NET_BIND_SERVICE"]), True),
    "good_players_a2s": (set_in(["metadata", "players"], {"query": "a2s", "port": "PORT"}), True),
    "good_players_log": (set_in(["metadata", "players"], {"query": "log", "join": "joined", "leave": "left", "file": "config/x.log"}), True),
    "bad_players_query": (set_in(["metadata", "players"], {"query": "telnet"}), False),
    "bad_players_file": (set_in(["metadata", "players"], {"query": "log", "join": "a", "leave": "b", "file": "config/../../x"}), False),
    "bad_players_literal": (set_in(["metadata", "players"], {"query": "log", "join": "", "leave": "b"}), False),
    "good_rcon_setting": (lambda d: (d["environment"].update(RCON_PORT="25575", RCON_PASSWORD={"type": "password", "required": False}),
                                     d["metadata"].update(rcon={"port": "RCON_PORT", "password": "RCON_PASSWORD"})), True),
    "good_rcon_game_port": (lambda d: (d.update(ports=[[{"PORT": ["27015", "tcp/udp"]}]]), d["environment"].update(RCON_PASSWORD=None),
                                       d["metadata"].update(rcon={"port": "PORT", "password": "RCON_PASSWORD"})), True),
    "bad_rcon_missing_password": (set_in(["metadata", "rcon"], {"port": "PORT"}), False),
    "bad_rcon_extra_key": (set_in(["metadata", "rcon"], {"port": "PORT", "password": "SERVER_NAME", "host": "10.0.0.1"}), False),
    "bad_rcon_name": (set_in(["metadata", "rcon"], {"port": "$(id)", "password": "SERVER_NAME"}), False),
    "bad_rcon_type": (set_in(["metadata", "rcon"], "25575"), False),
    "good_limits": (set_in(["limits"], {"memory_mb": 2048, "cpus": 1.5, "pids": 512}), True),
    "good_files": (set_in(["files"], {"~!/server.cfg": "/game/server.cfg"}), True),
    "good_port_number": (set_in(["ports"], [[{"PORT": [27015, "tcp/udp"]}]]), True),
    "bad_no_volumes": (drop("volumes"), False),
    "bad_no_metadata": (drop("metadata"), False),
    "bad_host_volume": (set_in(["volumes"], {"/etc": "/etc"}), False),
    "bad_dotdot_volume": (set_in(["volumes"], {"~!/../x": "/data"}), False),
    "bad_relative_target": (set_in(["volumes"], {"~!/data": "data"}), False),
    "bad_target_dotdot": (set_in(["volumes"], {"~!/data": "/data/../etc"}), False),
    "bad_port_range": (set_in(["ports"], [[{"PORT": ["70000", "udp"]}]]), False),
    "bad_port_zero": (set_in(["ports"], [[{"PORT": [0, "udp"]}]]), False),
    "bad_port_name": (set_in(["ports"], [[{"1PORT": ["7777", "udp"]}]]), False),
    "bad_empty_group": (set_in(["ports"], [[]]), False),
    "bad_env_array": (set_in(["environment", "LIST"], ["a"]), False),
    "bad_env_key": (set_in(["environment", "BAD-KEY"], "x"), False),
    "bad_env_required": (set_in(["environment", "X"], {"required": "yes"}), False),
    "bad_runtime": (set_in(["metadata", "runtime"], "windows"), False),
    "bad_packages_on_image": (set_in(["metadata", "packages"], ["wine"]), False),
    "bad_package_name": (lambda d: d["metadata"].update(runtime="debian", packages=["Bad;rm"]), False),
    "bad_capability": (set_in(["metadata", "capabilities"], ["SYS_ADMIN"]), False),
    "bad_limits_memory": (set_in(["limits"], {"memory_mb": 8}), False),
    "bad_limits_key": (set_in(["limits"], {"swap": 1}), False),
    "bad_image": (set_in(["metadata", "image"], "-bad"), False),
    "bad_image_chars": (set_in(["metadata", "image"], "peon test"), False),
    "bad_description": (set_in(["metadata", "description"], 42), False),
    "bad_no_image": (lambda d: d["metadata"].pop("image"), False),
}


def test_loader_and_schema_agree(make_stack):
    stack = make_stack()
    plans_dir = os.path.join(stack.data, "plans")
    expected = {}
    for name, (change, valid) in CASES.items():
        uid = name.replace("_", "-")
        document = variant(change)
        if "metadata" in document:
            document["metadata"]["game_uid"] = uid
        schema_valid = schema_errors(document) == []
        assert schema_valid == valid, f"{name}: the schema says {schema_errors(document)}"
        expected[uid] = valid
        os.makedirs(os.path.join(plans_dir, uid, "actions"))
        with open(os.path.join(plans_dir, uid, "plan.json"), "w") as f:
            json.dump(document, f)
        with open(os.path.join(plans_dir, uid, "actions", "server_start"), "w") as f:
            f.write("#!/bin/sh\nexec true\n")
    r = stack.request("PUT", "/api/v1/plans")
    assert r.status_code == 200, r.text
    refused = {f["game_uid"] for f in r.json()["failed"]}
    for uid, valid in expected.items():
        assert (uid not in refused) == valid, f"{uid}: schema says {'valid' if valid else 'invalid'}, the loader disagrees"
    failures = {f["game_uid"]: f for f in r.json()["failed"]}
    assert all(f["reasons"] and f["error"] == "; ".join(f["reasons"]) for f in failures.values())
    for uid, valid in expected.items():
        assert stack.request("GET", f"/api/v1/plan/{uid}").status_code == (200 if valid else 404), uid
