#!/usr/bin/env python3
"""A small stand-in for systemd's service manager, for tests on machines
without systemd as PID 1. Runs one command as a service:

* NOTIFY_SOCKET is set; FDSTORE=1 (with FDNAME=) stores the descriptors
  sent along, FDSTOREREMOVE=1 drops those of FDNAME=. As in systemd: at
  most FileDescriptorStoreMax=1 descriptor (another one is refused unless it
  is the same file), and every stored descriptor is watched with an epoll
  that asks for no events and dropped once it reports POLLERR or POLLHUP
  (so a descriptor that wakes waiters on every event costs this process a
  wake-up each time, as it would cost PID 1).
* Each start gets the stored descriptors back as 3, 4, ... with LISTEN_FDS,
  LISTEN_FDNAMES and LISTEN_PID, as systemd passes its descriptor store.
* Restart=on-failure: a death by signal or a non-zero exit (3, "handed
  over", included: RestartForceExitStatus=3) starts it again.
* SIGHUP is `systemctl restart` (SIGTERM, wait, start; the store is kept);
  SIGTERM is `systemctl stop` (SIGTERM, wait, drop the store, exit).

Usage: fake_service_manager.py STATE_DIR -- COMMAND ARGS...
The service's pid is in STATE_DIR/main.pid; events go to standard output.
"""
import os
import select
import signal
import socket
import sys
import time


def log(msg):
    print("fake-systemd: " + msg, flush=True)


def main():
    sep = sys.argv.index("--")
    state_dir, cmd = sys.argv[1], sys.argv[sep + 1:]
    os.makedirs(state_dir, exist_ok=True)
    sock_path = os.path.join(state_dir, "notify.sock")
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(sock_path)
    notify.setblocking(False)
    watch = select.epoll()
    watch.register(notify.fileno(), select.EPOLLIN)
    store = {}  # FDNAME -> descriptor
    max_stored = 1  # FileDescriptorStoreMax=1

    def same_file(a, b):
        sa, sb = os.fstat(a), os.fstat(b)
        return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)

    def drop(name):
        fd = store.pop(name)
        watch.unregister(fd)
        os.close(fd)
    wanted = {"restart": False, "stop": False}
    signal.signal(signal.SIGHUP, lambda *_: wanted.update(restart=True))
    signal.signal(signal.SIGTERM, lambda *_: wanted.update(stop=True))

    def start():
        names = sorted(store)
        pid = os.fork()
        if pid == 0:
            env = dict(os.environ, NOTIFY_SOCKET=sock_path)
            high = [os.dup(store[n]) for n in names]
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i, inheritable=True)
            if names:
                env.update(LISTEN_FDS=str(len(names)), LISTEN_FDNAMES=":".join(names),
                           LISTEN_PID=str(os.getpid()))
            os.execvpe(cmd[0], cmd, env)
        with open(os.path.join(state_dir, "main.pid"), "w") as f:
            f.write("%d\n" % pid)
        log("started pid %d with %d stored descriptor(s) %s" % (pid, len(names), names))
        return pid

    child = start()
    signaled = False
    while True:
        try:
            ready = watch.poll(0.05)
        except InterruptedError:
            ready = []
        for fd, events in ready:
            if fd == notify.fileno():
                continue
            for name, stored in list(store.items()):
                if stored == fd and events & (select.EPOLLERR | select.EPOLLHUP):
                    drop(name)
                    log("stored descriptor %s reported an error or hang-up; dropped" % name)
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(notify, 4096, 16)
            except (BlockingIOError, InterruptedError):
                break
            for fd in fds:
                os.set_inheritable(fd, False)
            fields = dict(line.split("=", 1) for line in msg.decode().splitlines() if "=" in line)
            name = fields.get("FDNAME", "stored")
            if fields.get("FDSTORE") == "1":
                for fd in fds:
                    if any(same_file(fd, kept) for kept in store.values()):
                        os.close(fd)
                        log("descriptor %s is already stored" % name)
                    elif len(store) >= max_stored:
                        os.close(fd)
                        log("store full (FileDescriptorStoreMax=%d); refused %s" % (max_stored, name))
                    else:
                        store[name] = fd
                        watch.register(fd, 0)
                        log("stored 1 descriptor(s) as %s" % name)
            elif fields.get("FDSTOREREMOVE") == "1":
                if name in store:
                    drop(name)
                log("removed descriptor %s from the store" % name)
                for fd in fds:
                    os.close(fd)
            else:
                for fd in fds:
                    os.close(fd)
        if (wanted["restart"] or wanted["stop"]) and not signaled:
            os.kill(child, signal.SIGTERM)
            signaled = True
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == 0:
            continue
        how = ("killed by signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
               else "exited with status %d" % os.WEXITSTATUS(status))
        log("pid %d %s" % (child, how))
        if wanted["stop"]:
            break
        failed = os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0
        if wanted["restart"] or failed:
            wanted["restart"], signaled = False, False
            time.sleep(0.2)  # RestartSec=200ms
            child = start()
            continue
        break
    for name, fd in store.items():
        os.close(fd)
    log("stopped; dropped %d stored descriptor(s)" % len(store))
    os.unlink(sock_path)


if __name__ == "__main__":
    main()
