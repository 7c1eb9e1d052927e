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
file, which is direct_io), a flush, a snapshot, a snapshot deletion, a revert,
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
"""
import argparse
import collections
import ctypes
import ctypes.util
import json
import mmap
import os
import random
import re
import subprocess
import sys
import time

KiB = 1024
MiB = 1024 * KiB
CHUNK = MiB
ZERO_CHUNK = bytes(CHUNK)
BUS_NAME = "org.shorthorn.Storage1"
VOLUME_IFACE = "org.shorthorn.Storage1.Volume"
JOB_IFACE = "org.shorthorn.Storage1.Job"
ROOT_PATH = "/org/shorthorn/Storage1"

MAX_SNAPSHOTS = 5      # user snapshots the model keeps at once
RECENT_WRITES = 6      # writes re-read after every step
FULL_CHECK_EVERY = 25  # steps between whole-volume reads
HEALTHY_TIMEOUT = 180  # seconds for "wait until healthy"


class CheckFailed(Exception):
    """A check on data or state failed: the test fails."""


class BashError(Exception):
    """The bash side could not do what was asked."""


def now():
    return time.monotonic()


# ---------------------------------------------------------------- the model

class Model:
    """The expected content of the volume (or of one snapshot)."""

    def __init__(self, size, chunks=None):
        self.size = size
        self.chunks = chunks if chunks is not None else [ZERO_CHUNK] * (size // CHUNK)

    def copy(self):
        return Model(self.size, list(self.chunks))

    def write(self, offset, data):
        pos = 0
        while pos < len(data):
            index, inner = divmod(offset + pos, CHUNK)
            n = min(CHUNK - inner, len(data) - pos)
            chunk = bytearray(self.chunks[index])
            chunk[inner:inner + n] = data[pos:pos + n]
            self.chunks[index] = bytes(chunk)
            pos += n

    def read(self, offset, length):
        out = bytearray()
        while length > 0:
            index, inner = divmod(offset, CHUNK)
            n = min(CHUNK - inner, length)
            out += self.chunks[index][inner:inner + n]
            offset += n
            length -= n
        return bytes(out)

    def image(self):
        return b"".join(self.chunks)


def write_data(seed, step, n, length):
    """The bytes of write n of a step; regenerable from (seed, step, n)."""
    return random.Random(f"{seed}/{step}/{n}").randbytes(length)


class Xxh3:
    """XXH3-64 of a buffer, from libxxhash (the library replica_tool uses)."""

    def __init__(self):
        name = ctypes.util.find_library("xxhash") or "libxxhash.so.0"
        lib = ctypes.CDLL(name)
        self.fn = lib.XXH3_64bits
        self.fn.restype = ctypes.c_uint64
        self.fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

    def hex(self, data):
        return "%016x" % self.fn(data, len(data))


# ---------------------------------------------------------------- D-Bus

def busctl_json(*args):
    p = subprocess.run(["busctl", "--system", "--json=short", *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"busctl {' '.join(args)}: {p.stderr.strip()}")
    return json.loads(p.stdout)


class DbusCallError(Exception):
    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def gdbus_call(path, method, *args):
    """Calls a method with gdbus (it names the D-Bus error); the reply text."""
    p = subprocess.run(["gdbus", "call", "--system", "--dest", BUS_NAME, "--object-path", path,
                        "--method", method, *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300)
    if p.returncode == 0:
        return p.stdout.strip()
    out = (p.stdout + p.stderr).strip()
    m = re.search(r"GDBus\.Error:([A-Za-z0-9_.]+):\s?(.*)", out, re.S)
    if m:
        raise DbusCallError(m.group(1), m.group(2).strip())
    raise DbusCallError("UNPARSED", out)


def volume_path(name):
    out = ""
    for i, c in enumerate(name):
        if c.isascii() and (c.isalpha() or (i > 0 and c.isdigit())):
            out += c
        else:
            out += "_%02x" % ord(c)
    return f"{ROOT_PATH}/volumes/{out or '_'}"


# ---------------------------------------------------------------- the driver

class Schedule:
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

    def bash(self, *words):
        print(" ".join(str(w) for w in words), flush=True)
        line = sys.stdin.readline()
        if not line:
            raise BashError(f"{words[0]}: the test script went away")
        line = line.rstrip("\n")
        if line.startswith("OK"):
            return line[3:]
        raise BashError(f"{' '.join(str(w) for w in words)}: {line[4:] if line[:4] == 'ERR ' else line}")

    # ------------------------------------------------------------ D-Bus state

    def replicas(self):
        data = busctl_json("get-property", BUS_NAME, self.vpath, VOLUME_IFACE, "Replicas")["data"]
        return [(addr, name, mode) for addr, name, mode in data]

    def prop(self, name):
        return busctl_json("get-property", BUS_NAME, self.vpath, VOLUME_IFACE, name)["data"]

    def listed_snapshots(self):
        """name -> (user_created, removed) as the volume lists them."""
        return {s[0]: (s[3], s[5]) for s in self.prop("Snapshots")}

    def running_jobs(self, operation):
        objs = busctl_json("call", BUS_NAME, ROOT_PATH, "org.freedesktop.DBus.ObjectManager",
                           "GetManagedObjects")["data"][0]
        out = []
        for path, ifaces in objs.items():
            j = ifaces.get(JOB_IFACE)
            if not j:
                continue
            g = lambda k: j.get(k, {}).get("data")
            if g("Volume") == self.vpath and g("Operation") == operation and g("State") == "running":
                out.append(path)
        return out

    def replicad_of(self, addr):
        return self.replicads.get(addr, "?" + addr)

    def available(self, r):
        return r not in self.down and not (r == self.proxied and self.cut)

    def modes_text(self, reps=None):
        reps = self.replicas() if reps is None else reps
        return "; ".join(f"{self.replicad_of(a)}:{n}:{m or '-'}" for a, n, m in reps)

    def can_take_down(self, r, reps):
        """True when another RW replica on an available replicad remains."""
        return any(m == "RW" and self.replicad_of(a) != r and self.available(self.replicad_of(a))
                   for a, _, m in reps)

    def rw_on(self, r):
        return any(m == "RW" and self.replicad_of(a) == r for a, _, m in self.replicas())

    # ------------------------------------------------------------ I/O

    def logical_block_size(self):
        try:
            dev = os.path.basename(os.path.realpath(self.dev))
            with open(f"/sys/block/{dev}/queue/logical_block_size") as f:
                return int(f.read())
        except OSError:
            return 4096

    def pwrite(self, door, offset, data, direct):
        flags = os.O_RDWR | (os.O_DIRECT if direct else 0)
        fd = os.open(self.dev if door == "dev" else self.file, flags)
        try:
            if direct:
                buf = mmap.mmap(-1, max(len(data), mmap.PAGESIZE))
                try:
                    buf[:len(data)] = data
                    with memoryview(buf) as mv:
                        done = os.pwritev(fd, [mv[:len(data)]], offset)
                finally:
                    buf.close()
            else:
                done = os.pwrite(fd, data, offset)
            if done != len(data):
                raise OSError(0, f"short write: {done} of {len(data)} bytes")
        finally:
            os.close(fd)

    def pread(self, door, offset, length):
        """Reads [offset, offset+length); through the loop device the range is
        widened to its logical blocks (O_DIRECT). Returns (offset, data)."""
        if door == "dev":
            bs = self.block_size
            start = offset - offset % bs
            end = min(self.size, -(-(offset + length) // bs) * bs)
            fd = os.open(self.dev, os.O_RDONLY | os.O_DIRECT)
            try:
                out = bytearray()
                buf = mmap.mmap(-1, MiB)
                try:
                    with memoryview(buf) as mv:
                        pos = start
                        while pos < end:
                            n = min(MiB, end - pos)
                            got = os.preadv(fd, [mv[:n]], pos)
                            if got != n:
                                raise OSError(0, f"short read at {pos}: {got} of {n} bytes")
                            out += mv[:n]
                            pos += n
                finally:
                    buf.close()
            finally:
                os.close(fd)
            return start, bytes(out)
        fd = os.open(self.file, os.O_RDONLY)
        try:
            out = bytearray()
            pos = offset
            while pos < offset + length:
                chunk = os.pread(fd, min(MiB, offset + length - pos), pos)
                if not chunk:
                    raise OSError(0, f"short read at {pos}")
                out += chunk
                pos += len(chunk)
        finally:
            os.close(fd)
        return offset, bytes(out)

    def explain(self, offset, got):
        """Which write's data (if any) the device returned at offset."""
        if got == bytes(len(got)):
            return "zeros"
        for step, n, off, length in reversed(self.writes):
            if off <= offset and offset + len(got) <= off + length:
                data = write_data(self.seed, step, n, length)
                if data[offset - off:offset - off + len(got)] == got:
                    return f"data of step {step} (write {n} at {off}+{length})"
        return "no data any write of this run put there"

    def expected_from(self, offset):
        for step, n, off, length in reversed(self.writes):
            if off <= offset < off + length:
                return f"last written by step {step} (write {n} at {off}+{length}), if no revert since"
        return "never written (zeros), if no revert since"

    def check_range(self, door, offset, length, what=""):
        try:
            start, got = self.pread(door, offset, length)
        except OSError as e:
            self.fail(f"read {door} {offset}+{length}: {e}; replicas {self.modes_text()}")
        want = self.model.read(start, len(got))
        if got == want:
            return
        i = next(k for k in range(len(got)) if got[k] != want[k])
        bad = start + i
        n = min(32, len(got) - i)
        # How far the difference reaches (bounded by the range read).
        j = i
        while j < len(got) and got[j] != want[j]:
            j += 1
        self.fail(
            f"{what or 'read back'}: mismatch through the {door} at offset {bad} "
            f"(range {start}+{len(got)}, first {j - i} bytes differ from there): "
            f"expected {want[i:i + n].hex()} ({self.expected_from(bad)}), "
            f"got {got[i:i + n].hex()} ({self.explain(bad, got[i:i + n])}); "
            f"replicas {self.modes_text()}")

    def check_all(self, what):
        door = random.Random(f"{self.seed}/{self.step}/full").choice(["dev", "file"])
        for off in range(0, self.size, 4 * MiB):
            self.check_range(door, off, 4 * MiB, what)
        self.counts["full-check"] += 1

    def check_after_step(self, rng):
        ranges = list(self.recent)
        for _ in range(4):
            length = 64 * KiB
            ranges.append((rng.randrange(0, self.size - length, 4 * KiB), length))
        for off, length in ranges:
            self.check_range(rng.choice(["dev", "file"]), off, length)
        if self.step % FULL_CHECK_EVERY == 0:
            self.check_all("whole volume")

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

    def do_snapshot(self, rng):
        name = f"s{self.step}"
        try:
            gdbus_call(self.vpath, f"{VOLUME_IFACE}.Snapshot", f"'{name}'", "@a{sv} {}")
        except DbusCallError as e:
            listed = self.listed_snapshots()
            if name in listed:
                self.notes.append(f"step {self.step}: Snapshot {name} failed ({e}) but is listed")
            else:
                if not e.name.endswith(".Busy"):
                    self.notes.append(f"step {self.step}: Snapshot {name} failed: {e}")
                self.counts["snapshot-refused"] += 1
                return f"snapshot {name}: refused ({e.name.rsplit('.', 1)[-1]}: {e.message})"
        self.snapshots[name] = self.model.copy()
        self.counts["snapshot"] += 1
        return f"snapshot {name}"

    def wait_job(self, path, limit=180):
        deadline = now() + limit
        while now() < deadline:
            try:
                state = busctl_json("get-property", BUS_NAME, path, JOB_IFACE, "State")["data"]
            except RuntimeError:
                return "forgotten", ""
            if state != "running":
                msg = busctl_json("get-property", BUS_NAME, path, JOB_IFACE, "Message")["data"]
                return state, msg
            time.sleep(0.1)
        self.fail(f"job {path} still running after {limit}s")

    def do_delete_snapshot(self, rng):
        name = rng.choice(sorted(self.snapshots))
        t = now()
        try:
            out = gdbus_call(self.vpath, f"{VOLUME_IFACE}.DeleteSnapshot", f"'{name}'", "@a{sv} {}")
        except DbusCallError as e:
            self.notes.append(f"step {self.step}: DeleteSnapshot {name} failed: {e}")
            if name not in self.listed_snapshots():
                self.fail(f"DeleteSnapshot {name} failed ({e}) yet the snapshot is gone")
            return f"delete snapshot {name}: refused ({e})"
        path = re.search(r"'(/[^']*)'", out).group(1)
        state, msg = self.wait_job(path)
        listed = self.listed_snapshots()
        if state != "completed":
            self.notes.append(f"step {self.step}: delete job of {name} {state}: {msg}")
        if name in listed and not listed[name][1]:
            if state == "completed":
                self.fail(f"delete snapshot {name}: job completed but the snapshot is still listed, not removed")
            return f"delete snapshot {name}: job {state} ({msg}); still listed"
        del self.snapshots[name]
        self.deleted.add(name)
        self.counts["delete-snapshot"] += 1
        return f"delete snapshot {name} ({state}, {now() - t:.1f}s)"

    def detach(self):
        for attempt in range(50):  # the loop device may be open for a moment (udev)
            try:
                self.bash("DETACH")
                return
            except BashError as e:
                if attempt == 49:
                    self.fail(f"detach failed for 10 s: {e}")
                self.log(f"detach: {e}; retrying")
                time.sleep(0.2)

    def attach(self):
        try:
            self.dev = self.bash("ATTACH").strip()
        except BashError as e:
            self.fail(f"attach failed: {e}; replicas {self.modes_text()}")
        self.block_size = self.logical_block_size()

    def do_revert(self, rng):
        name = rng.choice(sorted(self.snapshots))
        t = now()
        self.detach()
        try:
            gdbus_call(self.vpath, f"{VOLUME_IFACE}.Attach", "@a{sv} {'maintenance': <true>}")
        except DbusCallError as e:
            self.fail(f"attach in maintenance mode failed: {e}")
        # Busy while a rebuild or resync job runs (it may start at this
        # attach): wait for it.
        deadline = now() + 180
        while True:
            try:
                gdbus_call(self.vpath, f"{VOLUME_IFACE}.Revert", f"'{name}'", "@a{sv} {}")
                break
            except DbusCallError as e:
                if not e.name.endswith(".Busy") or now() > deadline:
                    self.fail(f"revert to {name} failed: {e}; replicas {self.modes_text()}")
                time.sleep(0.5)
        try:
            gdbus_call(self.vpath, f"{VOLUME_IFACE}.Detach", "@a{sv} {}")
        except DbusCallError as e:
            self.fail(f"detach from maintenance failed: {e}")
        self.attach()
        self.model = self.snapshots[name].copy()
        self.recent.clear()
        self.check_all(f"whole volume after the revert to {name}")
        self.counts["revert"] += 1
        return f"revert to {name} ({now() - t:.1f}s, replicas {self.modes_text()})"

    def await_not_rw(self, r, rng):
        """Makes sure fused no longer counts r's replica RW (a write tells it)."""
        deadline = now() + 20
        poked = 0
        while self.rw_on(r):
            if now() > deadline:
                self.fail(f"{r} is unavailable but its replica is still RW after 20 s and "
                          f"{poked} writes: {self.modes_text()}")
            if poked == 0 or poked * 2 < 20 - (deadline - now()):
                self.record(self.do_write(rng, why=f"write (so fused notices {r} is gone)"))
                poked += 1
            time.sleep(0.1)

    def take_down(self, rng, r, how):
        t = now()
        if how == "stop":
            status = self.bash("STOP", r)
        else:
            status = self.bash("KILL", r, "KILL" if how == "kill" else "USR2")
        self.down.add(r)
        self.counts[how] += 1
        if how == "power-loss" and status.strip() != "137":
            self.notes.append(f"step {self.step}: {r} exited with {status.strip()} after SIGUSR2, not 137")
        return f"{how} {r} (exit {status.strip()}, {now() - t:.1f}s)"

    def start(self, rng, r):
        self.await_not_rw(r, rng)
        self.bash("START", r)
        self.down.discard(r)
        self.counts["start"] += 1
        return f"start {r}"

    def do_cut(self, rng):
        self.bash("CUT")
        self.cut = True
        self.counts["cut"] += 1
        return f"cut the link to {self.proxied}"

    def do_heal(self, rng):
        self.bash("HEAL")
        self.cut = False
        self.counts["heal"] += 1
        return f"heal the link to {self.proxied}"

    def wait_healthy(self, rng):
        t = now()
        if self.cut:
            self.record(self.do_heal(rng))
        for r in sorted(self.down):
            self.record(self.start(rng, r))
        deadline = now() + HEALTHY_TIMEOUT
        while True:
            reps = self.replicas()
            rw = sum(1 for _, _, m in reps if m == "RW")
            if rw >= 3 and self.prop("Robustness") == "healthy" and not self.running_jobs("rebuild"):
                break
            if now() > deadline:
                self.fail(f"not healthy {HEALTHY_TIMEOUT}s after every replicad is back: "
                          f"Robustness {self.prop('Robustness')}, replicas {self.modes_text(reps)}")
            time.sleep(0.2)
        self.counts["wait-healthy"] += 1
        self.check_all("whole volume once healthy")
        return f"healthy after {now() - t:.1f}s ({self.modes_text()})"

    # ------------------------------------------------------------ the choice

    def choose(self, rng):
        """A weighted choice among the steps the state allows; (name, arg)."""
        options = [("write", None, 40), ("flush", None, 8)]
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

    def offline_check(self):
        """Every replica's live data and snapshots against the model and each other."""
        files = self.bash("OFFLINE").split()
        want = {"(live)": self.xxh3.hex(self.model.image())}
        for name, m in self.snapshots.items():
            want[name] = self.xxh3.hex(m.image())
        seen = {}
        for path in files:
            with open(path) as f:
                lines = f.read().splitlines()
            who = lines[0]
            hashes = {}
            for line in lines[1:]:
                parts = line.split()
                if len(parts) == 2:
                    hashes[parts[0]] = parts[1]
            self.log(f"{who}: {hashes}")
            for key, h in want.items():
                if hashes.get(key) != h:
                    self.fail(f"offline: {who}: {key} hashes {hashes.get(key, '(missing)')}, "
                              f"the model {h}; inspect: {lines[1:]}")
            seen[who] = hashes
        if len(seen) != 3:
            self.fail(f"offline: the volume lists {len(seen)} replicas, not 3: {list(seen)}")
        first_who, first = next(iter(seen.items()))
        for who, hashes in seen.items():
            if hashes != first:
                diff = sorted(k for k in set(hashes) | set(first) if hashes.get(k) != first.get(k))
                self.fail(f"offline: {who} and {first_who} differ in {diff}: {hashes} vs {first}")
        self.log(f"offline: {len(seen)} replicas hold the model's live data and "
                 f"{len(self.snapshots)} snapshots", echo=True)

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
