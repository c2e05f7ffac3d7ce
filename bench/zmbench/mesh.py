"""zonemesh nodes: config, install, daemon start/stop, /status, RSS."""

import json
import os
import subprocess
import time
import urllib.request

from .env import free_port, log, proc_status, wait_for


class Node:
    def __init__(self, env, name, db, extra=None):
        self.env = env
        self.name = name
        self.db = db
        self.port = free_port()
        self.peers = []
        self.extra = dict(extra or {})
        self.proc = None
        self.config_path = env.path("nodes", "%s-%s.json" % (name, self.port))
        self.log_path = env.path("nodes", "%s-%s.log" % (name, self.port))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def write_config(self):
        cfg = {
            "node_id": self.name,
            "listen": "127.0.0.1:%d" % self.port,
            "database": self.db.zonemesh_config(),
            "peers": [{"id": p.name, "url": p.url} for p in self.peers],
            "log_level": "warn",
        }
        cfg.update(self.extra)
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=1)

    def zm(self, *args, check=True):
        r = subprocess.run([self.env.zonemesh] + list(args) + ["--config", self.config_path],
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("zonemesh %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                                r.stderr.strip() or r.stdout.strip()))
        return r

    def install(self, create_schema=True):
        self.write_config()
        self.zm("install", *(["--create-schema"] if create_schema else []))

    def start(self, wait=True, wrapper=None):
        self.write_config()
        args = [self.env.zonemesh, "run", "--config", self.config_path]
        if wrapper:
            args = wrapper + args
        self.proc = self.env.spawn(args, self.log_path)
        if wait:
            wait_for(self.try_status, 60 if not wrapper else 300, interval=0.02,
                     what="zonemesh %s to answer /status" % self.name)
        return self

    def stop(self):
        if self.proc is not None:
            self.env.stop_proc(self.proc)
            self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def try_status(self):
        try:
            return self.status()
        except Exception:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("zonemesh %s exited with %s; log %s:\n%s" % (
                    self.name, self.proc.returncode, self.log_path, open(self.log_path).read()[-3000:]))
            return None

    def status(self):
        with urllib.request.urlopen(self.url + "/status", timeout=5) as r:
            return json.loads(r.read())

    def metrics(self):
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
        return out

    def peer_status(self, peer_name):
        for p in self.status()["peers"]:
            if p["id"] == peer_name:
                return p
        raise KeyError(peer_name)

    def mem(self):
        return proc_status(self.pid) if self.pid else None


def make_mesh(env, kind, n, names=None, extra=None, start=True):
    """n nodes on fresh databases of one kind, fully meshed, installed,
    (started)."""
    from .dbs import new_database
    names = names or ["ns%d" % (i + 1) for i in range(n)]
    nodes = [Node(env, names[i], new_database(env, kind), extra=extra) for i in range(n)]
    for a in nodes:
        a.peers = [b for b in nodes if b is not a]
    for a in nodes:
        a.install()
    if start:
        for a in nodes:
            a.start()
    return nodes


def stop_all(nodes):
    for n in nodes:
        n.stop()


def wait_zone_everywhere(nodes, zone, timeout=60):
    conns = [n.db.connect() for n in nodes]
    try:
        wait_for(lambda: all(c.zone_id(zone) is not None for c in conns), timeout, 0.01,
                 what="zone %s on every node" % zone)
    finally:
        for c in conns:
            c.close()


def wait_count(nodes, zone, expected, timeout, interval=0.01):
    """Waits until every node holds `expected` records in zone; returns the
    time each node reached it (monotonic)."""
    conns = {n.name: n.db.connect() for n in nodes}
    reached = {}
    deadline = time.monotonic() + timeout
    try:
        while len(reached) < len(conns):
            for name, c in conns.items():
                if name in reached:
                    continue
                if c.count_zone_records(zone) >= expected:
                    reached[name] = time.monotonic()
            if len(reached) == len(conns):
                break
            if time.monotonic() > deadline:
                have = {name: c.count_zone_records(zone) for name, c in conns.items()}
                raise TimeoutError("records of %s did not reach %d on every node in %ds: %s" % (
                    zone, expected, timeout, have))
            time.sleep(interval)
    finally:
        for c in conns.values():
            c.close()
    return reached


def wait_name(nodes, name, timeout, interval=0.002):
    """Waits until a record with this name is visible on every node (an
    indexed probe); returns {node: monotonic time it was first seen}."""
    conns = {n.name: n.db.connect() for n in nodes}
    reached = {}
    deadline = time.monotonic() + timeout
    try:
        while len(reached) < len(conns):
            for nm, c in conns.items():
                if nm not in reached and c.query("SELECT 1 FROM records WHERE name = ?", (name,)):
                    reached[nm] = time.monotonic()
            if len(reached) == len(conns):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("%s not on every node after %ds (seen on %s)" % (name, timeout, list(reached)))
            time.sleep(interval)
    finally:
        for c in conns.values():
            c.close()
    return reached


def check_count(nodes, zone, expected):
    for n in nodes:
        c = n.db.connect()
        have = c.count_zone_records(zone)
        c.close()
        if have != expected:
            raise RuntimeError("%s holds %d records of %s, expected %d" % (n.name, have, zone, expected))
