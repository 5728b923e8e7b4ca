"""Reads while slow actions are in flight: GET /servers, GET /orchestrator and GET /plans at 32
connections, first with nothing else running (the same-run baseline), then while 32 synchronous
stops of game servers that take 25 s to save hold their requests open. Prints req/s, p50, p99,
errors, and the resident memory of each worker process with 64 requests in flight.

Run: bench/load.sh (builds release binaries, starts dockerd if needed)."""
import concurrent.futures
import os
import subprocess
import sys
import time

from benchlib import BenchStack, wrk

SLOW = int(os.environ.get("SLOW_SERVERS", "32"))
STOP_SECONDS = 25
DURATION = 6


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


def main():
    with BenchStack(env={"PEON_SCHEDULER_RUNNERS": str(SLOW)}, port_range=os.environ.get("PEON_TEST_PORT_RANGE", "43000-43999")) as stack:
        s, base = stack.session, stack.base
        uids = [f"peontest.{stack.run}s{i}" for i in range(SLOW)]
        for uid in uids:
            s.put(f"{base}/api/v1/server/create/{uid}", json={"SERVER_NAME": "Bench", "PASSWORD": "pw",
                                                              "STOP_SECONDS": str(STOP_SECONDS)}).raise_for_status()
        endpoints = ["/api/v1/servers", "/api/v1/orchestrator", "/api/v1/plans"]
        baseline = {ep: wrk(base + ep, stack.key, seconds=DURATION) for ep in endpoints}

        pool = concurrent.futures.ThreadPoolExecutor(SLOW)
        started = time.monotonic()
        stops = [pool.submit(s.put, f"{base}/api/v1/server/stop/{uid}", timeout=120) for uid in uids]
        time.sleep(1.0)
        supervisor = subprocess.run(["pgrep", "-f", "-P", str(stack.proc.pid), "peon-api"], capture_output=True,
                                    text=True).stdout.split()[0]
        workers = lambda: subprocess.run(["pgrep", "-P", supervisor], capture_output=True, text=True).stdout.split()
        loaded, memory = {}, []
        for ep in endpoints:
            sampler = concurrent.futures.ThreadPoolExecutor(1).submit(
                lambda: (time.sleep(DURATION / 2), [(pid, rss(pid)) for pid in workers()]))
            loaded[ep] = wrk(base + ep, stack.key, seconds=DURATION)
            memory.append(sampler.result()[1])
        in_flight_at_end = sum(not f.done() for f in stops)
        results = [f.result() for f in stops]
        took = time.monotonic() - started

        print(f"wrk -t2 -c32 -d{DURATION}s over HTTPS, 2 worker processes x 32 threads, {os.cpu_count()} cores;"
              f" {SLOW} servers whose game takes {STOP_SECONDS} s to stop")
        print(f"{'endpoint':24} {'phase':22} {'req/s':>9} {'p50':>9} {'p99':>9}  errors")
        for ep in endpoints:
            print(f"{ep:24} {'alone':22} {baseline[ep][0]:>9} {baseline[ep][1]:>9} {baseline[ep][2]:>9}  {baseline[ep][3]}")
            print(f"{'':24} {f'{SLOW} slow stops in flight':22} {loaded[ep][0]:>9} {loaded[ep][1]:>9} {loaded[ep][2]:>9}"
                  f"  {loaded[ep][3]}")
        print(f"slow stops: {sum(r.status_code == 200 for r in results)}/{SLOW} answered 200, all done after {took:.1f} s,"
              f" {in_flight_at_end} still in flight when the last read phase ended")
        for sample in memory:
            print("worker RSS with 64 requests in flight: " + ", ".join(f"pid {pid} {mb} MB" for pid, mb in sample))


if __name__ == "__main__":
    sys.exit(main())
