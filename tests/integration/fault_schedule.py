#!/usr/bin/env python3
"""A randomized fault schedule against one replicated volume (issue 15).

Run by test_fault_schedule.sh as its coprocess, once per seed:

    fault_schedule.py --seed N --steps N --volume NAME --size BYTES
                      --device /dev/loopN --file FUSE-FILE
                      --replicad r1=ADDR --replicad r2=ADDR ... --proxied r2
                      [--power-loss] --log FILE --replay COMMAND

The volume has three replicas on replicads r1 r2 r3; fused reaches r2
through fault_proxy.py. Each step is a weighted random choice among those
the current state allows: a write (4 KiB-aligned or 512-byte-aligned with
O_DIRECT to the loop device or the FUSE file, or byte-unaligned to the FUSE
file, which is direct_io), a discard (BLKDISCARD of the device or a punch of
the file), a flush, a snapshot, a snapshot deletion, a revert,
kill -9 / clean restart / power loss (SIGUSR2, when replicad supports it) of
a replicad and its later start, a network cut of r2 and its heal, and "wait
until healthy". After each step the blocks written by the last few steps, a
few random windows (and, every few steps, the whole volume) are read back
and compared exactly with the model.

Design notes.
 * The model is the volume's expected content: a list of 1 MiB chunks
   (immutable bytes), so a snapshot's model is a copy of the list that shares
   the chunks. A write's data is random.Random("<seed>/<step>/<n>").randbytes,
   so any byte can be regenerated; a mismatch report says which step's data
   the device returned instead.
 * Each step draws from its own Random("<seed>/<step>"), so a step that
   finds the system in another state (a rebuild that ended sooner) does not
   shift the choices of all later steps.
 * Availability. A replicad is unavailable while it is down (killed, power
   lost, stopped) or, for r2, while the link is cut. Before making a
   replicad unavailable the driver reads the volume's Replicas from D-Bus:
   another RW replica on an available replicad must remain (so the volume
   never loses its last RW replica; at most two of three are ever out).
   Replicas are mapped to replicads by address, since a rebuild may place a
   new replica anywhere. Before starting a replicad that is down, the driver
   makes sure fused has marked its replica ERR (it learns of a dead replica
   from the next request to it), so a replica never looks RW on a connection
   that is gone.
 * The bash side owns the daemons (lib.sh state). Requests go out on stdout
   as one line, the answer comes back on stdin as "OK [words]" or
   "ERR message": KILL r SIG, STOP r, START r, CUT, HEAL, ATTACH, DETACH,
   OFFLINE (detach, stop every daemon, replica_tool inspect of every replica
   the volume lists; the answer names one file per replica). Logs go to
   stderr and to --log; stdout carries nothing else.
 * At the end: everything back and healthy, the whole volume read back,
   then OFFLINE: on every replica the live data and every snapshot of the
   model must hash (XXH3-64, libxxhash through ctypes, as replica_tool
   prints) to the model's, and all replicas must list the same hashes.

Exit status: 0 passed, 1 a check failed (the message names the seed, the
step, the history tail and the offset), 2 could not run.

Files: this one chooses and runs the steps (Schedule, the CLI);
fault_model.py holds the model and the read-back checks, fault_cluster.py
the D-Bus reads and the steps that act on the daemons (both mixed into
Schedule).
"""
import argparse
import collections
import os
import random
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree for the modules below
from fault_cluster import BashError, ClusterActions, volume_path
from fault_model import (DISCARD, KiB, MiB, CheckFailed, Model, ModelChecks, Xxh3, now,
                         write_data)

MAX_SNAPSHOTS = 5      # user snapshots the model keeps at once
RECENT_WRITES = 6      # writes re-read after every step


# ---------------------------------------------------------------- the driver

class Schedule(ModelChecks, ClusterActions):
    def __init__(self, a):
        self.a = a
        self.seed = a.seed
        self.size = a.size
        self.vol = a.volume
        self.vpath = volume_path(a.volume)
        self.dev = a.device
        self.file = a.file
        self.replicads = {}  # address -> replicad name
        for item in a.replicad:
            name, addr = item.split("=", 1)
            self.replicads[addr] = name
        self.names = sorted(set(self.replicads.values()))
        self.proxied = a.proxied
        self.power_loss = a.power_loss
        self.down = set()     # replicads not running
        self.cut = False      # the link to the proxied replicad is cut
        self.model = Model(self.size)
        self.snapshots = {}   # name -> Model (user snapshots the volume keeps)
        self.deleted = set()  # snapshot names deleted (may stay listed as removed)
        self.history = collections.deque(maxlen=40)
        self.writes = []      # (step, n, offset, length) of every write, in order
        self.recent = collections.deque(maxlen=RECENT_WRITES)  # (offset, length)
        self.step = 0
        self.counts = collections.Counter()
        self.notes = []       # things worth reporting that are not failures
        self.log_file = open(a.log, "a", buffering=1)
        self.xxh3 = Xxh3()
        self.block_size = self.logical_block_size()

    # ------------------------------------------------------------ logging

    def log(self, msg, echo=False):
        line = f"[fault_schedule seed {self.seed} {time.strftime('%H:%M:%S')}] {msg}"
        self.log_file.write(line + "\n")
        if echo:
            print(line, file=sys.stderr, flush=True)

    def record(self, what):
        entry = f"step {self.step}: {what}"
        self.history.append(entry)
        self.log(entry)

    def fail(self, what):
        tail = "\n".join("    " + h for h in self.history)
        raise CheckFailed(
            f"seed {self.seed}, step {self.step}: {what}\n  last steps:\n{tail}\n"
            f"  replay: {self.a.replay}")

    # ------------------------------------------------------------ bash
    # ------------------------------------------------------------ steps

    def do_write(self, rng, why="write"):
        n = sum(1 for w in self.writes if w[0] == self.step)
        kind = rng.choices(["4k", "512", "unaligned"], [6, 2, 2])[0]
        hot = rng.random() < 0.5  # half the writes overwrite the first 4 MiB
        span = 4 * MiB if hot else self.size
        if kind == "unaligned":
            length = rng.choice([1, 7, 511, 513, 4095, 4097, 12345, rng.randrange(1, 200 * KiB)])
            offset = rng.randrange(0, span - length)
            door, direct = "file", False
        else:
            unit = 4096 if kind == "4k" else 512
            length = unit * rng.choice([1, 1, 2, 3, 8, 16, 64, rng.randrange(1, MiB // unit + 1)])
            offset = rng.randrange(0, (span - length) // unit + 1) * unit
            door = "dev" if unit >= self.block_size and rng.random() < 0.7 else "file"
            direct = True
        data = write_data(self.seed, self.step, n, length)
        self.writes.append((self.step, n, offset, length))
        t = now()
        try:
            self.pwrite(door, offset, data, direct)
        except OSError as e:
            self.fail(f"{why} {offset}+{length} ({kind}, {door}) failed: {e}; "
                      f"replicas {self.modes_text()}")
        self.model.write(offset, data)
        self.recent.append((offset, length))
        self.counts["write"] += 1
        return f"{why} {offset}+{length} ({kind}, {door}{', O_DIRECT' if direct else ''}, {now() - t:.2f}s)"

    def do_discard(self, rng):
        """A discard: whole 4 KiB blocks of the device, or any range of the
        file (partial blocks are zeroed in place). It reads zeros from then on,
        so the model takes it as a write of zeros."""
        hot = rng.random() < 0.5
        span = 4 * MiB if hot else self.size
        door = rng.choice(["dev", "file"])
        if door == "dev":
            length = 4096 * rng.choice([1, 2, 16, 256, rng.randrange(1, 4 * MiB // 4096 + 1)])
            offset = rng.randrange(0, (span - length) // 4096 + 1) * 4096
        else:
            length = rng.choice([4096, 64 * KiB, MiB, rng.randrange(1, 2 * MiB)])
            offset = rng.randrange(0, span - length)
        self.writes.append((self.step, DISCARD, offset, length))
        t = now()
        try:
            self.discard(door, offset, length)
        except OSError as e:
            self.fail(f"discard {offset}+{length} ({door}) failed: {e}; "
                      f"replicas {self.modes_text()}")
        self.model.write(offset, bytes(length))
        self.recent.append((offset, length))
        self.counts["discard"] += 1
        return f"discard {offset}+{length} ({door}, {now() - t:.2f}s)"

    def do_flush(self, rng):
        door = rng.choice(["dev", "file"])
        fd = os.open(self.dev if door == "dev" else self.file, os.O_RDWR)
        try:
            os.fsync(fd)
        except OSError as e:
            self.fail(f"fsync of the {door} failed: {e}; replicas {self.modes_text()}")
        finally:
            os.close(fd)
        return f"flush ({door})"

    # ------------------------------------------------------------ the choice

    def choose(self, rng):
        """A weighted choice among the steps the state allows; (name, arg)."""
        options = [("write", None, 40), ("discard", None, 4), ("flush", None, 8)]
        if len(self.snapshots) < MAX_SNAPSHOTS:
            options.append(("snapshot", None, 5))
        if self.snapshots:
            options += [("delete-snapshot", None, 3), ("revert", None, 2)]
        reps = self.replicas()
        downs = [r for r in self.names if self.available(r) and self.can_take_down(r, reps)]
        for r in downs:
            options += [("kill", r, 3 / len(downs)), ("restart", r, 2 / len(downs))]
            if self.power_loss:
                options.append(("power-loss", r, 3 / len(downs)))
        # A cut replicad may be killed too (its link is already gone).
        if self.cut and self.proxied not in self.down:
            options.append(("kill", self.proxied, 1))
        for r in sorted(self.down):
            options.append(("start", r, 6 / len(self.down)))
        if not self.cut and (self.proxied in self.down or self.can_take_down(self.proxied, reps)):
            options.append(("cut", None, 2))
        if self.cut:
            options.append(("heal", None, 5))
        options.append(("wait-healthy", None, 2))
        pick = rng.choices(options, [w for _, _, w in options])[0]
        return pick[0], pick[1]

    def run_step(self):
        rng = random.Random(f"{self.seed}/{self.step}")
        name, arg = self.choose(rng)
        if name == "write":
            what = self.do_write(rng)
        elif name == "discard":
            what = self.do_discard(rng)
        elif name == "flush":
            what = self.do_flush(rng)
        elif name == "snapshot":
            what = self.do_snapshot(rng)
        elif name == "delete-snapshot":
            what = self.do_delete_snapshot(rng)
        elif name == "revert":
            what = self.do_revert(rng)
        elif name in ("kill", "power-loss"):
            what = self.take_down(rng, arg, name)
            if name == "power-loss" and rng.random() < 0.5:
                what += "; " + self.start(rng, arg)
        elif name == "restart":
            what = self.take_down(rng, arg, "stop") + "; " + self.start(rng, arg)
        elif name == "start":
            what = self.start(rng, arg)
        elif name == "cut":
            what = self.do_cut(rng)
        elif name == "heal":
            what = self.do_heal(rng)
        else:
            what = self.wait_healthy(rng)
        self.record(what)
        self.check_after_step(rng)

    # ------------------------------------------------------------ the end

    def settle(self):
        """Everything back, healthy, system snapshots merged away."""
        rng = random.Random(f"{self.seed}/final")
        self.record(self.wait_healthy(rng))
        deadline = now() + 60
        while True:
            pending = [n for n, (user, removed) in self.listed_snapshots().items()
                       if not user or (removed and n not in self.deleted)]
            if not pending:
                break
            if now() > deadline:
                self.notes.append(f"system snapshots still listed 60 s after healthy: {pending}")
                break
            time.sleep(0.5)

    def run(self):
        started = now()
        self.log(f"{self.a.steps} steps on volume {self.vol} ({self.size // MiB} MiB), replicads "
                 f"{self.replicads}, proxied {self.proxied}, power loss "
                 f"{'on' if self.power_loss else 'off'}, loop block size {self.block_size}",
                 echo=True)
        for self.step in range(1, self.a.steps + 1):
            self.run_step()
            if self.step % 50 == 0:
                self.log(f"{self.step} steps, {now() - started:.0f}s: {dict(self.counts)}", echo=True)
        self.step = self.a.steps + 1
        self.settle()
        self.offline_check()
        self.log(f"passed: {self.a.steps} steps in {now() - started:.0f}s: {dict(self.counts)}",
                 echo=True)
        for note in self.notes:
            self.log("note: " + note, echo=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--volume", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--replicad", action="append", required=True, help="NAME=ADDRESS")
    p.add_argument("--proxied", required=True)
    p.add_argument("--power-loss", action="store_true")
    p.add_argument("--log", required=True)
    p.add_argument("--replay", default="")
    a = p.parse_args()
    try:
        s = Schedule(a)
    except OSError as e:
        print(f"fault_schedule: cannot start: {e}", file=sys.stderr)
        return 2
    try:
        s.run()
    except CheckFailed as e:
        s.log(f"FAILED: {e}")
        print(f"fault_schedule FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    except (BashError, RuntimeError, subprocess.TimeoutExpired) as e:
        s.log(f"FAILED (harness): {e}")
        tail = "\n".join("    " + h for h in s.history)
        print(f"fault_schedule FAILED: seed {s.seed}, step {s.step}: {e}\n  last steps:\n{tail}\n"
              f"  replay: {a.replay}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
