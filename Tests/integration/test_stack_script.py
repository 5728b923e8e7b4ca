"""scripts/stack.sh and scripts/render-nginx.sh as an operator meets them: a stop that always stops
everything it started, and settings refused before anything starts."""
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT, Stack


def sessions():
    """pid -> (session id, state) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = open(f"/proc/{name}/stat").read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields count from the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(name)] = (int(fields[3]), fields[0])
    return out


def stack_processes(s):
    """The script's session (the script, peon-api and its workers, the scheduler) and nginx's own."""
    nginx = subprocess.run(["pgrep", "-P", str(s.proc.pid), "-x", "nginx"], capture_output=True, text=True).stdout.split()
    assert len(nginx) == 1, s.output()
    wanted = {s.proc.pid, int(nginx[0])}
    return {pid for pid, (sid, _) in sessions().items() if sid in wanted}


def alive(pids):
    now = sessions()
    return sorted(p for p in pids if p in now and now[p][1] != "Z")


def port_free(port):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# The gap between the two signals moves the second one across the stop: before it, in it, after it.
@pytest.mark.parametrize("gap", [0, 0.005, 0.02, 0.05, 0.1, 0.3])
def test_a_second_sigterm_does_not_abort_the_stop(gap):
    # As `make run` under a supervisor or a terminal: TERM to the process group, then make forwards
    # one more to the script.
    s = Stack(env={"PEON_WORKERS": "1"})
    pids = set()
    try:
        pids = stack_processes(s)
        assert len(pids) >= 5, pids  # script, peon-api supervisor and worker, scheduler, nginx master and worker
        os.killpg(s.proc.pid, signal.SIGTERM)
        time.sleep(gap)
        os.kill(s.proc.pid, signal.SIGTERM)
        assert s.proc.wait(timeout=40) == 0, s.output()
        assert "peon stopped" in s.output()
        # Nothing it started outlives it; nginx's workers (which hold the ports) included.
        assert alive(pids) == [], (alive(pids), s.output())
        assert port_free(s.https_port) and port_free(s.http_port)
    finally:
        for pid in alive(pids):  # what a failed stop left (cleanup only reaches the script's group)
            os.kill(pid, signal.SIGKILL)
        s.cleanup()


def render(tmp_path, **env):
    full = {**os.environ, "PEON_DATA_DIR": str(tmp_path / "var"), **env}
    out = subprocess.run([os.path.join(ROOT, "scripts", "render-nginx.sh")], env=full, capture_output=True, text=True, timeout=30)
    return out.returncode, out.stderr


@pytest.mark.parametrize("value", ["0.0.0.0/0", "::/0", "10.0.0.5, ::/0", "128.0.0.0/1", "10.0.0.0/7", "::/7", "2000::/3"])
def test_metrics_allow_refuses_everyone(tmp_path, value):
    code, err = render(tmp_path, PEON_METRICS_ALLOW=value)
    assert code == 2 and "PEON_METRICS_ALLOW" in err and "everyone" in err, (code, err)


@pytest.mark.parametrize("value", ["10.0.0.0/8", "192.168.1.0/24", "10.0.0.5", "fd00::/8", "2001:db8::/32", "::1"])
def test_metrics_allow_keeps_networks(tmp_path, value):
    code, err = render(tmp_path, PEON_METRICS_ALLOW=value)
    assert code == 0, err
    conf = open(tmp_path / "var" / "nginx" / "metrics-allow.conf").read()
    assert f"allow {value};" in conf and conf.rstrip().endswith("deny all;"), conf


def test_the_env_file_states_the_key_length_the_code_requires():
    import re
    swift = open(os.path.join(ROOT, "Sources", "PeonCore", "Config", "Configuration.swift")).read()
    minimum = re.search(r"minimumKeyLength = (\d+)", swift).group(1)
    env = open(os.path.join(ROOT, "systemd", "peon.env")).read()
    assert f"admin key ({minimum}-256 characters" in env, env
