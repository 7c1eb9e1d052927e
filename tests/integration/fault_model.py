"""The model half of fault_schedule.py: what the volume must hold.

Model is the expected content of the volume (or of one snapshot) as 1 MiB
immutable chunks; write_data regenerates any write's bytes from (seed, step,
n); Xxh3 hashes as replica_tool does. ModelChecks is mixed into Schedule: it
does the I/O through the loop device or the FUSE file and compares what comes
back with the model, after each step, over the whole volume, and offline on
every replica at the end. It uses the Schedule's state (model, writes, recent,
seed, step, dev, file, size, block_size) and its fail/log/bash.
"""
import ctypes
import ctypes.util
import fcntl
import mmap
import os
import random
import struct
import time

KiB = 1024
MiB = 1024 * KiB
CHUNK = MiB
ZERO_CHUNK = bytes(CHUNK)

FULL_CHECK_EVERY = 25  # steps between whole-volume reads
BLKDISCARD = 0x1277  # _IO(0x12, 119), linux/fs.h
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
DISCARD = -1  # the `n` of a discard in Schedule.writes (its data is zeros)


class CheckFailed(Exception):
    """A check on data or state failed: the test fails."""


def now():
    return time.monotonic()


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



class ModelChecks:
    """Reads back through the device or the file and compares with the model."""

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

    def discard(self, door, offset, length):
        """Discards [offset, offset+length): BLKDISCARD on the loop device (the
        kernel sends it to the FUSE file as a punch), or fallocate(PUNCH_HOLE)
        on the FUSE file itself. Either reaches the replicas as UNMAP."""
        if door == "dev":
            fd = os.open(self.dev, os.O_WRONLY)
            try:
                fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", offset, length))
            finally:
                os.close(fd)
            return
        fd = os.open(self.file, os.O_RDWR)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
            if libc.fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, offset, length) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
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
            if n == DISCARD:
                continue
            if off <= offset and offset + len(got) <= off + length:
                data = write_data(self.seed, step, n, length)
                if data[offset - off:offset - off + len(got)] == got:
                    return f"data of step {step} (write {n} at {off}+{length})"
        return "no data any write of this run put there"

    def expected_from(self, offset):
        for step, n, off, length in reversed(self.writes):
            if off <= offset < off + length and n == DISCARD:
                return f"discarded by step {step} ({off}+{length}), if no revert since"
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
