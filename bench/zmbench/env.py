"""The benchmark environment: a temp directory, free loopback ports, the
processes this run started (and only those), machine facts, logging."""

import atexit
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(REPO, "bench")
SERVERS = os.path.join(REPO, "tests", "servers")

_t0 = time.monotonic()


def log(msg):
    sys.stderr.write("[%7.1fs] %s\n" % (time.monotonic() - _t0, msg))
    sys.stderr.flush()


def free_port():
    """A TCP port nothing listens on at 127.0.0.1 right now (and that UDP
    port is free too, for DNS servers)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
        if port in Env.ports_given:
            continue
        Env.ports_given.add(port)
        return port
    raise RuntimeError("no free port found")


def wait_for(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_status(pid):
    """VmRSS and VmHWM of a process in KiB (None when it is gone)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    return out


def proc_cpu_seconds(pid):
    """utime+stime of a process (and its reaped children) in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        return None


def machine():
    info = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        info["loadavg_at_start"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    try:
        info["pg_version"] = subprocess.run(
            ["sh", "-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1 | xargs -I{} {}/postgres --version"],
            capture_output=True, text=True).stdout.strip()
        info["mariadb_version"] = subprocess.run(["mariadbd", "--version"], capture_output=True,
                                                 text=True).stdout.strip()
    except OSError:
        pass
    import sqlite3
    info["sqlite_version"] = sqlite3.sqlite_version
    return info


def git_state():
    def run(*args):
        return subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, text=True).stdout.strip()
    dirty = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench")
    return {"commit": run("rev-parse", "--short", "HEAD"), "dirty_files_outside_bench": dirty.splitlines()}


class Env:
    ports_given = set()

    def __init__(self, keep=False, zonemesh=None, quick=False):
        self.quick = quick
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="zmbench-")
        # The postgres user must reach its data directory below this.
        os.chmod(self.dir, 0o755)
        self.zonemesh = zonemesh
        self.procs = []      # Popen objects we started
        self.cleanups = []   # callables, run last-in first-out
        self._pg = None
        self._my = None
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        log("work directory %s" % self.dir)

    def _on_signal(self, signum, frame):
        log("signal %d: cleaning up" % signum)
        self.close()
        os._exit(130)

    def path(self, *parts):
        p = os.path.join(self.dir, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def spawn(self, args, logfile, env=None, cwd=None):
        out = open(logfile, "ab")
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd)
        out.close()
        self.procs.append(p)
        return p

    def stop_proc(self, p, sig=signal.SIGTERM, timeout=30):
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    # Database servers, started on first use and shared by the benchmarks.
    def pg(self):
        if self._pg is None:
            from .dbs import PgServer
            self._pg = PgServer(self)
        return self._pg

    def mysql(self):
        if self._my is None:
            from .dbs import MariaServer
            self._my = MariaServer(self)
        return self._my

    def close(self):
        while self.cleanups:
            fn = self.cleanups.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning up
                log("cleanup: %s" % e)
        for p in list(self.procs):
            self.stop_proc(p, timeout=15)
        for srv in (self._pg, self._my):
            if srv is not None:
                try:
                    srv.stop()
                except Exception as e:
                    log("stopping %s: %s" % (srv, e))
        self._pg = self._my = None
        if self.dir and os.path.isdir(self.dir) and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self.dir and self.keep:
            log("kept %s" % self.dir)
        self.dir = None


def dump_json(obj):
    return json.dumps(obj, indent=2, sort_keys=False, default=str)
