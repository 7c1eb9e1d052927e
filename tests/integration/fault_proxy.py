#!/usr/bin/env python3
"""A fault-injecting TCP proxy for the replication tests.

    fault_proxy.py --listen PORT --target HOST:PORT [--state-file FILE]

Listens on 127.0.0.1:PORT and forwards every connection to the target. Its
mode is switched by signals:

  SIGUSR1  blackhole: connections stay open (new ones are accepted) but no
           byte moves in either direction; what the peers send stays in the
           socket buffers, as with packets lost on a cut link that TCP would
           retransmit once it heals. A connection accepted meanwhile is only
           connected to the target after the heal.
  SIGUSR2  pass: forwarding resumes (held bytes are delivered, in order).
  SIGHUP   reset: every open connection is closed (both sides), mode pass.

After each switch it writes the mode (pass / blackhole) to --state-file, so
a test knows the switch took effect. Logs go to stderr. SIGTERM exits.
"""
import argparse
import asyncio
import signal
import sys
import time


def log(msg):
    print(f"[fault_proxy {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Proxy:
    def __init__(self, target_host, target_port, state_file):
        self.target = (target_host, target_port)
        self.state_file = state_file
        self.passing = asyncio.Event()
        self.passing.set()
        self.conns = set()  # (client_writer, upstream_writer or None)
        self.next_id = 0

    def set_mode(self, mode):
        if mode == "blackhole":
            self.passing.clear()
        elif mode == "reset":
            for cw, uw in list(self.conns):
                for w in (cw, uw):
                    if w is not None:
                        w.transport.abort()
            self.conns.clear()
            self.passing.set()
            mode = "pass"
        else:
            self.passing.set()
        log(f"mode {mode} ({len(self.conns)} connections)")
        if self.state_file:
            with open(self.state_file + ".tmp", "w") as f:
                f.write(mode + "\n")
            import os
            os.replace(self.state_file + ".tmp", self.state_file)

    async def pump(self, cid, direction, reader, writer):
        try:
            while True:
                await self.passing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                # Bytes read just before a cut are held until the heal.
                await self.passing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass
        log(f"conn {cid}: {direction} closed")

    async def handle(self, creader, cwriter):
        cid = self.next_id
        self.next_id += 1
        entry = [cwriter, None]
        key = (cwriter, None)
        self.conns.add(key)
        log(f"conn {cid}: accepted from {cwriter.get_extra_info('peername')}")
        try:
            await self.passing.wait()
            try:
                ureader, uwriter = await asyncio.open_connection(*self.target)
            except OSError as e:
                log(f"conn {cid}: cannot connect to target: {e}")
                cwriter.close()
                return
            self.conns.discard(key)
            key = (cwriter, uwriter)
            self.conns.add(key)
            await asyncio.gather(self.pump(cid, "client->target", creader, uwriter),
                                 self.pump(cid, "target->client", ureader, cwriter))
        finally:
            self.conns.discard(key)
            del entry


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--state-file")
    a = p.parse_args()
    host, port = a.target.rsplit(":", 1)
    proxy = Proxy(host, int(port), a.state_file)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, proxy.set_mode, "blackhole")
    loop.add_signal_handler(signal.SIGUSR2, proxy.set_mode, "pass")
    loop.add_signal_handler(signal.SIGHUP, proxy.set_mode, "reset")
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", a.listen, reuse_address=True)
    proxy.set_mode("pass")
    log(f"listening on 127.0.0.1:{a.listen}, forwarding to {a.target}")
    async with server:
        await stop.wait()
    log("exiting")


if __name__ == "__main__":
    asyncio.run(main())
