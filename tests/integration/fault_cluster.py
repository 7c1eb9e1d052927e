"""The cluster half of fault_schedule.py: D-Bus and the daemons.

The bash side (test_fault_schedule.sh) owns the daemons: bash() sends one
request line on stdout and reads "OK [words]" or "ERR message" on stdin.
D-Bus is read with busctl (JSON) and called with gdbus (it names the error).
ClusterActions is mixed into Schedule: the volume's replicas and snapshots as
D-Bus lists them, and the steps that act on the cluster (snapshot, delete,
revert, kill / stop / power loss, start, cut, heal, wait until healthy). It
uses the Schedule's state (vpath, replicads, down, cut, snapshots, model,
counts, notes) and its fail/log/record/do_write/check_all.
"""
import json
import re
import subprocess
import sys
import time

from fault_model import now

BUS_NAME = "org.shorthorn.Storage1"
VOLUME_IFACE = "org.shorthorn.Storage1.Volume"
JOB_IFACE = "org.shorthorn.Storage1.Job"
ROOT_PATH = "/org/shorthorn/Storage1"

HEALTHY_TIMEOUT = 180  # seconds for "wait until healthy"


class BashError(Exception):
    """The bash side could not do what was asked."""


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


class ClusterActions:
    """D-Bus state of the volume and the steps that act on the cluster."""

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
