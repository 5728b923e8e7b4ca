"""Log follow: a game writing about 1,000 lines a second (each line carries the game's own clock,
bash's $EPOCHREALTIME) reaches 16 Server-Sent Events clients; prints the delay from the game's
echo to each client's receipt (p50, p99, max), lines received, and GET /servers at 32
connections with and without the streams, in the same run.

Run: bench/logs.sh (builds release binaries, starts dockerd, makes the Debian base image)."""
import json
import os
import statistics
import sys
import threading
import time

from benchlib import BenchStack, wrk

CLIENTS = 16

PLAN = {"metadata": {"game_uid": "chatty", "image": "debian:bookworm-slim", "runtime": "debian",
                     "description": "Writes timestamped lines (log benchmark)."},
        "ports": [[{"PORT": ["47000", "tcp"]}]], "environment": {"RATE": "1000"},
        "volumes": {"~!/actions": "/actions", "~!/config": "/home/steam/config"}}
# 10 lines every 10 ms with bash builtins only (no fork per line): about 1,000 lines a second.
START = """#!/bin/bash
exec {never}<> <(:)
n=0
while :; do
  for _ in 1 2 3 4 5 6 7 8 9 10; do n=$((n + 1)); echo "t=$EPOCHREALTIME n=$n"; done
  read -t 0.01 -u "$never" || true
done
"""


def main():
    with BenchStack(port_range="47000-47999") as stack:
        s, base, data = stack.session, stack.base, stack.data
        os.makedirs(f"{data}/plans/chatty/actions", exist_ok=True)
        json.dump(PLAN, open(f"{data}/plans/chatty/plan.json", "w"))
        open(f"{data}/plans/chatty/actions/server_start", "w").write(START)
        s.put(base + "/api/v1/plans").raise_for_status()
        baseline = wrk(base + "/api/v1/servers", stack.key)
        uid = f"chatty.{stack.run}"
        s.put(f"{base}/api/v1/server/create/{uid}", json={}, timeout=600).raise_for_status()
        time.sleep(2)

        delays = [[] for _ in range(CLIENTS)]
        stop = threading.Event()

        def client(i):
            with s.get(f"{base}/api/v1/server/logs/{uid}", params={"follow": "true", "lines": "1"}, stream=True,
                       timeout=60) as r:
                for raw in r.iter_lines(decode_unicode=True):
                    if raw.startswith("data: t="):
                        delays[i].append(time.time() - float(raw[8:].split()[0]))
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1)
        for d in delays:
            d.clear()
        loaded = wrk(base + "/api/v1/servers", stack.key)
        stop.set()
        for t in threads:
            t.join(10)
        all_delays = sorted(x * 1000 for d in delays for x in d)
        received = [len(d) for d in delays]
        p = lambda q: all_delays[min(len(all_delays) - 1, int(q * len(all_delays)))]
        print(f"{CLIENTS} SSE clients following one game writing ~1,000 lines/s, 2 worker processes, {os.cpu_count()} cores")
        print(f"game echo -> client receipt: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {all_delays[-1]:.1f} ms"
              f" over {len(all_delays)} lines; per client {min(received)}-{max(received)} lines in ~8 s"
              f" ({statistics.mean(received) / 8:.0f} lines/s each)")
        print(f"{'GET /api/v1/servers':24} {'phase':18} {'req/s':>9} {'p50':>9} {'p99':>9}  errors")
        print(f"{'':24} {'no streams':18} {baseline[0]:>9} {baseline[1]:>9} {baseline[2]:>9}  {baseline[3]}")
        print(f"{'':24} {f'{CLIENTS} streams':18} {loaded[0]:>9} {loaded[1]:>9} {loaded[2]:>9}  {loaded[3]}")


if __name__ == "__main__":
    sys.exit(main())
