"""Every bundled plan's actions/server_start, run on the host as the runtime runs it (`bash
server_start` in GAME_DIR) against stand-in game binaries that record their pid and arguments."""
import json
import os
import re
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLANS = os.path.join(ROOT, "plans")
GAMES = sorted(g for g in os.listdir(PLANS) if os.path.isfile(os.path.join(PLANS, g, "actions", "server_start")))
# Ports a game derives from another one instead of reading them (ARK and Conan's raw port is
# PORT + 1; 7 Days to Die uses PORT + 1 and PORT + 2).
IMPLICIT_PORTS = {"ark": {"PORT_RAW"}, "conanexiles": {"PORT_RAW"}, "7daystodie": {"PORT_2", "PORT_3"}}
SECRET = re.compile(r"NAME|PASSWORD|TOKEN|GSLT")

STAND_IN = """#!/bin/sh
# Records what the script ran: pid, working directory, arguments (NUL-separated).
echo $$ > "$PEON_RECORD.pid"
pwd > "$PEON_RECORD.cwd"
printf '%s\\0' "$0" "$@" > "$PEON_RECORD.args"
"""


def test_every_bundled_game_has_a_server_start():
    games = [g for g in os.listdir(PLANS) if os.path.isfile(os.path.join(PLANS, g, "plan.json"))]
    listed = {entry["game_uid"] for entry in json.load(open(os.path.join(PLANS, "plans.json")))}
    assert set(games) == set(GAMES) == listed


def settings_for(game):
    """Values a user might give: ports moved off their defaults, names with a space, passwords."""
    plan = json.load(open(os.path.join(PLANS, game, "plan.json")), object_pairs_hook=dict)
    env = {}
    for entry in plan.get("ports", [[]])[0]:
        for name, (port, _proto) in entry.items():
            env[name] = str(int(port) + 10000)
    for key, value in plan.get("environment", {}).items():
        if isinstance(value, dict):
            value = value.get("default")
        if SECRET.search(key):
            env[key] = f"Peon {key.title()} 42" if "NAME" in key else f"s3cret-{key.lower()}-42"
        elif value is None or value == "":
            env[key] = f"peon-{key.lower()}"
        else:
            env[key] = str(value)
    # An RCON port setting moved off its default too (it must reach the game's configuration).
    rcon = plan["metadata"].get("rcon")
    if rcon and rcon["port"] in plan.get("environment", {}):
        env[rcon["port"]] = str(int(env[rcon["port"]]) + 10000)
    return env


@pytest.mark.parametrize("game", GAMES)
def test_server_start_execs_the_game_with_its_settings(game, tmp_path):
    game_dir, home, bin_dir = tmp_path / "game", tmp_path / "home", tmp_path / "bin"
    for d in (game_dir, home, bin_dir):
        d.mkdir()
    script = open(os.path.join(PLANS, game, "actions", "server_start")).read()
    # The stand-ins: every "$GAME_DIR/..." the script names, and wine for the Windows-only servers.
    binaries = set(re.findall(r'\bexec\s+(?:wine\s+)?"\$GAME_DIR/([^"$]+)"', script))
    # Debian-packaged games exec a binary found on PATH (the stand-in's folder comes first here).
    binaries |= {"../bin/" + name for name in re.findall(r'\bexec\s+([a-z][a-z0-9_-]*)\s', script) if name != "wine"}
    assert binaries, "server_start must exec the game binary through $GAME_DIR or PATH"
    for relative in binaries | {"../bin/wine"}:
        path = game_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(STAND_IN)
        path.chmod(0o755)
    record = tmp_path / "record"
    settings = settings_for(game)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "GAME_DIR": str(game_dir),
           "PEON_RECORD": str(record), **settings}
    proc = subprocess.Popen(["bash", os.path.join(PLANS, game, "actions", "server_start")], cwd=game_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    # exec: the game (or wine) is the script's own process, so SIGTERM reaches it.
    assert int(open(f"{record}.pid").read()) == proc.pid
    args = open(f"{record}.args", "rb").read().decode().split("\0")[:-1]
    assert args[0].startswith(str(game_dir)) or args[0].startswith(str(bin_dir))
    written = ""
    for base in (game_dir, home):
        for folder, _dirs, files in os.walk(base):
            for name in files:
                path = os.path.join(folder, name)
                if not os.access(path, os.X_OK):
                    written += open(path, errors="replace").read() + "\n"
    haystack = "\0".join(args) + "\0" + written
    ports = {k for entry in json.load(open(os.path.join(PLANS, game, "plan.json")))["ports"][0] for k in entry}
    for key, value in settings.items():
        if key in ports and key not in IMPLICIT_PORTS.get(game, set()):
            assert value in haystack, f"{game}: port {key}={value} reaches neither the arguments nor a config file"
        if SECRET.search(key):
            assert value in haystack, f"{game}: {key} reaches neither the arguments nor a config file"
    rcon = json.load(open(os.path.join(PLANS, game, "plan.json")))["metadata"].get("rcon")
    if rcon:
        assert settings[rcon["port"]] in haystack, f"{game}: the RCON port reaches neither the arguments nor a config file"
