"""Backup and restore of a 1 GiB server folder (half incompressible, half compressible) through
Peon's API against `tar | zstd -3` and `zstd -d | tar -x` of the same folders, in the same run.

Run: bench/backup.sh (builds release binaries, starts dockerd if needed)."""
import os
import shutil
import subprocess
import sys
import time

from benchlib import BenchStack, fill_world, median, timed
from benchlib import settle as settle_disk

ROUNDS = int(os.environ.get("ROUNDS", "3"))
HALF = 512 << 20


def main():
    with BenchStack(port_range=os.environ.get("PEON_TEST_PORT_RANGE", "48000-48999"), tmp_dir=os.environ.get("BENCH_DIR", "/var/tmp")) as stack:
        s, base, tmp = stack.session, stack.base, stack.tmp
        uid = f"peontest.{stack.run}"
        s.put(f"{base}/api/v1/server/create/{uid}", json={"SERVER_NAME": "Bench", "PASSWORD": "pw", "start_later": True},
              timeout=120).raise_for_status()
        home = f"{stack.data}/servers/peontest/{stack.run}"
        fill_world(home, HALF)
        settle = lambda: settle_disk(home)

        peon_backup, floor_backup, peon_restore, floor_restore, sizes = [], [], [], [], []
        for _ in range(ROUNDS):
            settle()
            made = {}
            peon_backup.append(timed(lambda: made.update(s.post(f"{base}/api/v1/server/backup/{uid}", timeout=900).json())))
            sizes.append(made["size"])
            out = f"{tmp}/floor.tar.zst"
            settle()
            floor_backup.append(timed(lambda: subprocess.run(
                f"tar -C {home} -cf - actions config user | zstd -3 -q -f -o {out}", shell=True, check=True)))
            settle()
            peon_restore.append(timed(lambda: s.put(f"{base}/api/v1/server/restore/{uid}", json={"id": made["id"]},
                                                    timeout=900).raise_for_status()))
            target = f"{tmp}/floor-restore"
            os.makedirs(target)
            settle()
            floor_restore.append(timed(lambda: subprocess.run(
                f"zstd -d -q -c {out} | tar -C {target} -xf -", shell=True, check=True)))
            # As Peon deletes the folders a restore replaced right after answering.
            shutil.rmtree(target)
            floor_size = os.path.getsize(out)
        print(f"1 GiB server folder (512 MiB random + 512 MiB text), median of {ROUNDS}, {os.cpu_count()} cores")
        print(f"{'':10} {'peon (API)':>12} {'tar|zstd -3':>12} {'ratio':>7}")
        print(f"{'backup':10} {median(peon_backup):11.2f}s {median(floor_backup):11.2f}s"
              f" {median(peon_backup) / median(floor_backup):7.2f}")
        print(f"{'restore':10} {median(peon_restore):11.2f}s {median(floor_restore):11.2f}s"
              f" {median(peon_restore) / median(floor_restore):7.2f}")
        print("rounds, s: " + "; ".join(f"{name} " + " ".join(f"{x:.2f}" for x in xs) for name, xs in
                                        [("peon backup", peon_backup), ("floor backup", floor_backup),
                                         ("peon restore", peon_restore), ("floor restore", floor_restore)]))
        print(f"archive size: peon {sizes[-1] / 2**20:.0f} MiB (verified, sha256), zstd -3 {floor_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
