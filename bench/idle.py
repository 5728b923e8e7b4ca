"""The scheduler at rest with a fleet: N servers of the test game made through the API (16 at once)
and left running, then the scheduler's CPU (all its threads, from /proc/<pid>/task/*/stat) and its
memory (VmRSS) over a quiet half minute, and `perf` on it meanwhile when `perf` is installed (the
top of its report is printed). The fleet is removed at the end. Not a test.

Run: bench/idle.sh (N servers, default 200; SECONDS_IDLE, default 30)."""
import concurrent.futures
import glob
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "integration"))
from conftest import RUN, Stack  # noqa: E402

N = int(os.environ.get("N", "200"))
QUIET = int(os.environ.get("SECONDS_IDLE", "30"))


def ticks(pid):
    """utime + stime of every thread of `pid`, in clock ticks."""
    total = 0
    for task in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            fields = open(task).read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def scheduler_of(stack):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if b"peon-scheduler" in open(f"/proc/{pid}/cmdline", "rb").read() and stack.data.encode() in open(
                    f"/proc/{pid}/environ", "rb").read():
                return pid
        except OSError:
            continue
    raise RuntimeError("no scheduler")


def main():
    stack = Stack(env={"PEON_PORT_RANGE": "43000-44999"})
    uids = [f"peontest.{RUN}f{i}" for i in range(N)]
    try:
        began = time.time()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda uid: stack.request("PUT", f"/api/v1/server/create/{uid}",
                                                            json={"SERVER_NAME": "Fleet", "PASSWORD": "pw"}, timeout=900).status_code, uids))
        print(f"created {codes.count(200)} of {N} running servers in {time.time() - began:.0f} s")
        pid = scheduler_of(stack)
        time.sleep(20)  # the first stats round and log followers settle
        listed = stack.request("GET", "/api/v1/servers").json()
        print(f"ready: {sum(1 for s in listed if s.get('ready'))} of {len(listed)}")
        hz = os.sysconf("SC_CLK_TCK")
        before, started = ticks(pid), time.time()
        if shutil.which("perf"):
            subprocess.run(["perf", "record", "-F", "499", "-g", "-o", f"{stack.dir}/perf.data", "-p", pid, "--", "sleep", str(QUIET)],
                           capture_output=True)
        else:
            time.sleep(QUIET)
        used, elapsed = (ticks(pid) - before) / hz, time.time() - started
        rss = next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS"))
        print(f"scheduler at rest with {N} running: {used / elapsed * 100:.1f} % of a core over {elapsed:.0f} s, VmRSS {int(rss) / 1024:.0f} MiB")
        if shutil.which("perf"):
            report = subprocess.run(["perf", "report", "-i", f"{stack.dir}/perf.data", "--children", "--sort", "symbol", "--stdio", "-g", "none"],
                                    capture_output=True, text=True).stdout
            rows = [line.split(None, 3) for line in report.splitlines() if "%" in line and not line.startswith("#")]
            rows = [r for r in rows if len(r) == 4 and "Peon" in r[3]][:12]
            symbols = [r[3].split()[0] for r in rows]
            names = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(symbols),
                                   capture_output=True, text=True).stdout.splitlines() if shutil.which("swift") else symbols
            print("where it goes (perf: share of its samples, with what each calls):")
            for r, name in zip(rows, names):
                print(f"  {r[0]:>7} {name[:150]}")
    finally:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda uid: stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=900), uids))
        stack.cleanup()


if __name__ == "__main__":
    main()
