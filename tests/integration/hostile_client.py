#!/usr/bin/env python3
"""Hostile clients of the replica protocol (doc/protocol.md), for
test_hostile_clients.sh. Each mode attacks one replicad at HOST:PORT and
checks how it answers; a wrong answer prints "FAIL: ..." and exits 1.

  hostile_client.py MODE HOST:PORT [ARG...]

Modes:
  garbage N             N connections sending random bytes: each is closed
  malformed             crafted bad headers (magic, version 1, opcode, flags,
                        reserved field, lengths, checksum): each is closed,
                        version 1 gets an error naming both versions
  unauth VOL REPLICA    OPEN/DELETE/WRITE/HELLO/REPLICAD_INFO without
                        authenticating: EACCES
  wrongkey              a client with another key, and one with a forged
                        proof: refused both ways
  stale VOL REPLICA     authenticated, with old epochs: DELETE_REPLICA,
                        OPEN_REPLICA and HELLO at epoch 0 are ESTALE
  flood N SECONDS       N unauthenticated connections at once, held SECONDS:
                        prints how many the server closed at once
  idle N SECONDS        N authenticated connections, idle for SECONDS, then
                        each still answers PING
  info HOST_ID          authenticated REPLICAD_INFO: {} and a body with
                        unknown fields answer the replicad's facts (host id
                        HOST_ID, free <= total); a payload that is not a
                        JSON object closes the connection, and the next
                        connection is answered again
  noread SECONDS        authenticated, creates its own replica, asks for
                        256 MiB of READs and never reads the replies: the
                        server must drop it within SECONDS; deletes the replica

The cluster key is read from $SHORTHORN_CLUSTER_KEY. XXH3-64 (the payload
checksum) comes from libxxhash through ctypes; HMAC-SHA256 from hmac.
"""
import ctypes
import hashlib
import hmac
import json
import os
import random
import socket
import struct
import sys
import time

MAGIC = 0x4E524853
VERSION = 2
HEADER = struct.Struct("<IHHIiQQQQII Q".replace(" ", ""))
assert HEADER.size == 64
OPS = {"HELLO": 1, "READ": 2, "WRITE": 3, "FLUSH": 4, "UNMAP": 5, "PING": 6,
       "AUTH_CHALLENGE": 7, "AUTH_PROOF": 8, "CREATE_REPLICA": 16,
       "OPEN_REPLICA": 17, "CLOSE_REPLICA": 18, "DELETE_REPLICA": 19,
       "REPLICAD_INFO": 21}
REPLY = 1
EACCES, ESTALE, EPROTONOSUPPORT = 13, 116, 93

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def checksum(payload):
    return _xxh.XXH3_64bits(payload, len(payload)) if payload else 0


def frame(op, rid=1, epoch=0, offset=0, length=0, payload=b"", version=VERSION, flags=0,
          status=0, reserved=0, csum=None):
    if csum is None:
        csum = checksum(payload)
    return HEADER.pack(MAGIC, version, op, flags, status, rid, epoch, offset, length,
                       len(payload), reserved, csum) + payload


def connect(address, timeout=10):
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(s):
    """(header fields dict, payload), or None at EOF / reset."""
    try:
        raw = read_exact(s, 64)
        if raw is None:
            return None
        (magic, version, op, flags, status, rid, epoch, offset, length, plen, _,
         _) = HEADER.unpack(raw)
        payload = read_exact(s, plen) if plen else b""
        if plen and payload is None:
            return None
    except (ConnectionResetError, BrokenPipeError):
        return None
    return {"version": version, "op": op, "flags": flags, "status": status, "id": rid}, payload


def closed_soon(s, within=10):
    """True when the server closes the connection (EOF or reset) within `within` s,
    skipping whatever frames it sends first."""
    s.settimeout(within)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def load_key():
    path = os.environ["SHORTHORN_CLUSTER_KEY"]
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


def proof(key, label, cn, sn):
    return hmac.new(key, f"shorthorn-auth-v2 {label}".encode() + cn + sn, hashlib.sha256).digest()


def authenticate(s, key):
    """The client side of the handshake; returns (ok, why)."""
    cn = os.urandom(32)
    s.sendall(frame(OPS["AUTH_CHALLENGE"], payload=cn))
    got = read_frame(s)
    if got is None:
        return False, "closed after AUTH_CHALLENGE"
    h, p = got
    if h["status"] != 0 or len(p) != 64:
        return False, f"AUTH_CHALLENGE reply status {h['status']}, {len(p)} bytes"
    sn, server_proof = p[:32], p[32:]
    if not hmac.compare_digest(server_proof, proof(key, "server", cn, sn)):
        return False, "the server's proof does not match"
    s.sendall(frame(OPS["AUTH_PROOF"], payload=proof(key, "client", cn, sn)))
    got = read_frame(s)
    if got is None:
        return False, "closed after AUTH_PROOF"
    if got[0]["status"] != 0:
        return False, f"AUTH_PROOF refused: {got[1].decode(errors='replace')}"
    return True, ""


def call(s, op, body=None, epoch=0, rid=1, offset=0, length=0, payload=None):
    if payload is None:
        payload = json.dumps(body or {}).encode()
    s.sendall(frame(OPS[op], rid=rid, epoch=epoch, offset=offset, length=length, payload=payload))
    got = read_frame(s)
    if got is None:
        fail(f"{op}: connection closed instead of a reply")
    return got[0]["status"], got[1].decode(errors="replace")


def mode_garbage(address, n):
    rng = random.Random(int(os.environ.get("SHORTHORN_HOSTILE_SEED", "1")))
    for i in range(int(n)):
        s = connect(address)
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8192)))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.shutdown(socket.SHUT_WR)
        if not closed_soon(s):
            fail(f"garbage connection {i} ({len(data)} bytes) was not closed within 10 s")
        s.close()
    print(f"garbage: {n} connections of random bytes, each closed")


def mode_malformed(address):
    cases = {
        "bad magic": b"\x00" * 64,
        "unknown opcode": frame(99),
        "unknown flag": frame(OPS["AUTH_CHALLENGE"], flags=0x80, payload=os.urandom(32)),
        "reserved field": frame(OPS["AUTH_CHALLENGE"], reserved=1, payload=os.urandom(32)),
        "short challenge": frame(OPS["AUTH_CHALLENGE"], payload=os.urandom(31)),
        "bad checksum": frame(OPS["AUTH_CHALLENGE"], payload=os.urandom(32), csum=1),
        "4 GiB payload announced": HEADER.pack(MAGIC, VERSION, OPS["WRITE"], 0, 0, 1, 1, 0,
                                               1 << 22, 0xFFFFFFFF, 0, 1),
        "reply flag on a request": frame(OPS["AUTH_CHALLENGE"], flags=REPLY,
                                         payload=os.urandom(32)),
        "truncated header": frame(OPS["PING"])[:40],
    }
    for name, data in cases.items():
        s = connect(address)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        if not closed_soon(s):
            fail(f"malformed frame ({name}) did not close the connection within 10 s")
        s.close()
    # Version 1: an error reply in version 1 framing that names both versions.
    s = connect(address)
    body = json.dumps({"volume": "v", "replica": "r", "epoch": 1}).encode()
    s.sendall(frame(OPS["OPEN_REPLICA"], payload=body, version=1))
    got = read_frame(s)
    if got is None:
        fail("a version 1 client got no reply")
    h, p = got
    text = p.decode(errors="replace")
    if h["version"] != 1 or h["status"] != EPROTONOSUPPORT or "version 2" not in text \
            or "version 1" not in text:
        fail(f"version 1 client: reply version {h['version']} status {h['status']}: {text}")
    s.close()
    print(f"malformed: {len(cases)} bad frames closed; version 1 told: {text}")


def mode_unauth(address, volume, replica):
    who = {"volume": volume, "replica": replica, "epoch": 1}
    for op, body, payload in (("OPEN_REPLICA", who, None), ("DELETE_REPLICA", who, None),
                              ("HELLO", who, None), ("WRITE", None, b"\xff" * 4096),
                              ("REPLICAD_INFO", {}, None)):
        s = connect(address)
        status, text = call(s, op, body, epoch=1, length=4096 if payload else 0, payload=payload)
        if status != EACCES or "has not authenticated" not in text:
            fail(f"unauthenticated {op}: status {status}: {text}")
        if not closed_soon(s):
            fail(f"unauthenticated {op}: connection not closed")
        s.close()
    print("unauth: OPEN_REPLICA, DELETE_REPLICA, HELLO, WRITE, REPLICAD_INFO refused with EACCES")


def mode_wrongkey(address):
    s = connect(address)
    ok, why = authenticate(s, os.urandom(32))
    if ok or "proof does not match" not in why:
        fail(f"a client with another key: {ok} {why}")
    s.close()
    s = connect(address)
    s.sendall(frame(OPS["AUTH_CHALLENGE"], payload=os.urandom(32)))
    if read_frame(s) is None:
        fail("no AUTH_CHALLENGE reply")
    s.sendall(frame(OPS["AUTH_PROOF"], payload=os.urandom(32)))
    got = read_frame(s)
    if got is None or got[0]["status"] != EACCES:
        fail(f"a forged proof was not refused with EACCES: {got}")
    if not closed_soon(s):
        fail("the forger's connection stays open")
    s.close()
    print("wrongkey: the server's proof fails another key; a forged proof gets EACCES")


def mode_stale(address, volume, replica):
    key = load_key()
    s = connect(address)
    ok, why = authenticate(s, key)
    if not ok:
        fail(f"authenticate: {why}")
    who = {"volume": volume, "replica": replica, "epoch": 0}
    for op in ("DELETE_REPLICA", "OPEN_REPLICA", "HELLO"):
        status, text = call(s, op, who)
        if status != ESTALE:
            fail(f"{op} at epoch 0: status {status}: {text}")
    s.close()
    print("stale: DELETE_REPLICA, OPEN_REPLICA and HELLO at epoch 0 are ESTALE")


def mode_info(address, host_id):
    key = load_key()

    def authenticated():
        s = connect(address)
        ok, why = authenticate(s, key)
        if not ok:
            fail(f"authenticate: {why}")
        return s

    def check_facts(text, what):
        try:
            facts = json.loads(text)
        except ValueError:
            fail(f"REPLICAD_INFO {what}: a reply that is not JSON: {text[:200]}")
        for field in ("host_id", "hostname", "tags", "total_bytes", "free_bytes",
                      "provisioned_bytes", "replicas"):
            if field not in facts:
                fail(f"REPLICAD_INFO {what}: no '{field}' in {text[:300]}")
        if facts["host_id"] != host_id:
            fail(f"REPLICAD_INFO {what}: host_id {facts['host_id']!r}, expected {host_id!r}")
        if not 0 <= facts["free_bytes"] <= facts["total_bytes"]:
            fail(f"REPLICAD_INFO {what}: free above total: {text[:300]}")
        if facts["replicas"] < 1:
            fail(f"REPLICAD_INFO {what}: the volume's replica is not counted: {text[:300]}")
        return facts

    s = authenticated()
    status, text = call(s, "REPLICAD_INFO", {})
    if status != 0:
        fail(f"REPLICAD_INFO {{}}: status {status}: {text}")
    facts = check_facts(text, "{}")
    status, text = call(s, "REPLICAD_INFO", {"volume": 5, "tags": ["x"] * 1000}, epoch=7, rid=2)
    if status != 0:
        fail(f"REPLICAD_INFO with unknown fields: status {status}: {text}")
    check_facts(text, "with unknown fields")
    s.close()
    bad = {"an array": b"[]", "a string": b'"info"', "empty": b"", "cut JSON": b'{"a":',
           "not UTF-8 JSON": b"\xff\xfe{}", "a number": b"21"}
    for name, payload in bad.items():
        s = authenticated()
        s.sendall(frame(OPS["REPLICAD_INFO"], payload=payload))
        got = read_frame(s)
        if got is not None:
            fail(f"REPLICAD_INFO with {name} payload: a reply instead of a closed connection: "
                 f"status {got[0]['status']}: {got[1][:200]!r}")
        s.close()
        # The replicad goes on answering.
        s = authenticated()
        status, text = call(s, "REPLICAD_INFO", {})
        if status != 0:
            fail(f"REPLICAD_INFO after one with {name} payload: status {status}: {text}")
        s.close()
    print(f"info: host_id {facts['host_id']}, tags {facts['tags']}, {facts['replicas']} "
          f"replicas of {facts['provisioned_bytes']} bytes, {facts['free_bytes']} of "
          f"{facts['total_bytes']} bytes free; {len(bad)} payloads that are not a JSON object "
          f"closed their connection")


def mode_flood(address, n, seconds):
    conns = []
    for _ in range(int(n)):
        try:
            conns.append(connect(address, timeout=5))
        except OSError as e:
            fail(f"connect: {e}")
    time.sleep(0.5)
    closed = 0
    for s in conns:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed += 1
    time.sleep(float(seconds))
    for s in conns:
        s.close()
    print(f"flood: {n} idle unauthenticated connections, {closed} closed by the server at once")
    if closed < int(n) - 64 - 8:
        fail(f"only {closed} of {n} closed: more than 64 unauthenticated connections kept")


def mode_idle(address, n, seconds):
    key = load_key()
    conns = []
    for i in range(int(n)):
        s = connect(address)
        ok, why = authenticate(s, key)
        if not ok:
            fail(f"idle connection {i}: {why}")
        conns.append(s)
    time.sleep(float(seconds))
    for i, s in enumerate(conns):
        status, text = call(s, "PING", payload=b"", rid=i + 1)
        if status != 0:
            fail(f"idle connection {i}: PING status {status}: {text}")
        s.close()
    print(f"idle: {n} authenticated connections idle for {seconds}s, each still answers")


def mode_noread(address, seconds):
    key = load_key()
    volume, replica = "attacker", f"attacker-{os.getpid()}"
    ctl = connect(address)
    ok, why = authenticate(ctl, key)
    if not ok:
        fail(f"authenticate: {why}")
    status, text = call(ctl, "CREATE_REPLICA", {"volume": volume, "replica": replica,
                                                 "size": 64 << 20})
    if status != 0:
        fail(f"CREATE_REPLICA: {text}")
    s = connect(address)
    ok, why = authenticate(s, key)
    if not ok:
        fail(f"authenticate: {why}")
    who = {"volume": volume, "replica": replica, "epoch": 1}
    for op in ("OPEN_REPLICA", "HELLO"):
        status, text = call(s, op, who, epoch=1)
        if status != 0:
            fail(f"{op}: {text}")
    s.settimeout(float(seconds))
    start = time.time()
    sent = 0
    try:
        for i in range(64):  # 256 MiB of replies asked for, none read
            s.sendall(frame(OPS["READ"], rid=100 + i, epoch=1, offset=0, length=4 << 20))
            sent += 1
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    # Wait for the server to drop us, still without reading replies.
    dropped = False
    while time.time() - start < float(seconds):
        try:
            s.send(frame(OPS["PING"], rid=1, epoch=1))
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
            break
        except socket.timeout:
            pass
        time.sleep(0.5)
    elapsed = time.time() - start
    s.close()
    status, text = call(ctl, "DELETE_REPLICA", {"volume": volume, "replica": replica,
                                                 "epoch": 1})
    if status != 0:
        fail(f"DELETE_REPLICA of {replica}: {text}")
    ctl.close()
    if not dropped:
        fail(f"a client that never read {sent} READs of 4 MiB was not dropped in {seconds}s")
    print(f"noread: {sent} READs of 4 MiB sent, never read; dropped after {elapsed:.1f}s")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    mode, address, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    modes = {"garbage": mode_garbage, "malformed": mode_malformed, "unauth": mode_unauth,
             "wrongkey": mode_wrongkey, "stale": mode_stale, "flood": mode_flood,
             "idle": mode_idle, "noread": mode_noread, "info": mode_info}
    if mode not in modes:
        print(__doc__)
        sys.exit(2)
    modes[mode](address, *args)


if __name__ == "__main__":
    main()
