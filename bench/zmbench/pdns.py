"""PowerDNS Authoritative (Debian pdns-server, gsqlite3) instances and a
tiny DNS client (UDP A query; no dependency beyond the standard library)."""

import json
import os
import random
import socket
import struct
import subprocess
import urllib.request

from .env import free_port, log, wait_for

API_KEY = "zmbench-api-key"


class Pdns:
    def __init__(self, env, name, sqlite_path, settings=None):
        self.env = env
        self.name = name
        self.db_path = sqlite_path
        self.port = free_port()
        self.api_port = free_port()
        self.dir = env.path("pdns", name, "x")
        self.dir = os.path.dirname(self.dir)
        self.log_path = os.path.join(self.dir, "pdns.log")
        conf = {
            "launch": "gsqlite3",
            "gsqlite3-database": sqlite_path,
            "local-address": "127.0.0.1",
            "local-port": str(self.port),
            "socket-dir": self.dir,
            "daemon": "no",
            "guardian": "no",
            "disable-syslog": "yes",
            "api": "yes",
            "api-key": API_KEY,
            "webserver": "yes",
            "webserver-address": "127.0.0.1",
            "webserver-port": str(self.api_port),
            "webserver-allow-from": "127.0.0.0/8",
            "allow-axfr-ips": "127.0.0.0/8",
            "loglevel": "4",
        }
        conf.update(settings or {})
        with open(os.path.join(self.dir, "pdns.conf"), "w") as f:
            for k, v in conf.items():
                f.write("%s=%s\n" % (k, v))
        self.proc = None

    @property
    def api_url(self):
        return "http://127.0.0.1:%d" % self.api_port

    def start(self):
        self.proc = self.env.spawn(["pdns_server", "--config-dir=" + self.dir], self.log_path)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("pdns_server %s exited: %s" % (self.name, open(self.log_path).read()[-2000:]))
            try:
                self.api("GET", "/api/v1/servers/localhost")
                return True
            except Exception:
                return False
        wait_for(up, 30, 0.05, "pdns_server %s" % self.name)
        return self

    def stop(self):
        if self.proc is not None:
            self.env.stop_proc(self.proc)
            self.proc = None

    def control(self, *args):
        return subprocess.run(["pdns_control", "--config-dir=" + self.dir] + list(args),
                              capture_output=True, text=True)

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + path, data=data, method=method,
                                     headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return json.loads(text) if text else None

    def query(self, name, qtype=1, timeout=1.0):
        return dns_query("127.0.0.1", self.port, name, qtype, timeout)

    def axfr_size(self, zone):
        """(records, messages, bytes) of `dig AXFR` of the zone."""
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.port), zone, "AXFR", "+noall", "+stats"],
                           capture_output=True, text=True, timeout=120)
        for line in r.stdout.splitlines():
            # ;; XFR size: 100003 records (messages 40, bytes 2989361)
            if "XFR size:" in line:
                parts = line.replace("(", " ").replace(")", " ").replace(",", " ").split()
                recs = int(parts[parts.index("size:") + 1])
                msgs = int(parts[parts.index("messages") + 1])
                byts = int(parts[parts.index("bytes") + 1])
                return recs, msgs, byts
        raise RuntimeError("dig AXFR gave no size: %s %s" % (r.stdout[-500:], r.stderr[-500:]))


def dns_query(host, port, name, qtype=1, timeout=1.0):
    """One UDP query; returns (rcode, answer count, raw answer)."""
    qid = random.randint(0, 65535)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, (host, port))
        while True:
            data, _ = s.recvfrom(65535)
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                break
    finally:
        s.close()
    flags, qd, an = struct.unpack(">HHH", data[2:8])
    return flags & 0xF, an, data


def soa_serial(host, port, zone):
    rcode, an, data = dns_query(host, port, zone, qtype=6)
    if rcode != 0 or an == 0:
        return None
    # Skip header and question; parse the first answer's RDATA.
    i = 12
    while data[i] != 0:
        i += data[i] + 1
    i += 5
    # answer name (pointer or labels)
    if data[i] & 0xC0 == 0xC0:
        i += 2
    else:
        while data[i] != 0:
            i += data[i] + 1
        i += 1
    i += 10  # type, class, ttl, rdlength
    for _ in range(2):  # mname, rname
        while True:
            if data[i] & 0xC0 == 0xC0:
                i += 2
                break
            if data[i] == 0:
                i += 1
                break
            i += data[i] + 1
    return struct.unpack(">I", data[i:i + 4])[0]
