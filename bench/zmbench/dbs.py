"""Throwaway database servers (via tests/servers/*.sh) and a small uniform
client layer over sqlite3, psycopg2 and pymysql."""

import itertools
import os
import sqlite3
import subprocess

from .env import SERVERS, REPO, free_port, log

_ids = itertools.count(1)


class PgServer:
    def __init__(self, env):
        self.env = env
        self.dir = env.path("postgres")
        self.port = free_port()
        log("starting PostgreSQL on 127.0.0.1:%d" % self.port)
        subprocess.run([os.path.join(SERVERS, "postgres.sh"), "start", self.dir, str(self.port)], check=True)

    def admin(self):
        import psycopg2
        c = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        c.autocommit = True
        return c

    def create_database(self, prefix="zm"):
        name = "%s%d" % (prefix, next(_ids))
        c = self.admin()
        c.cursor().execute('CREATE DATABASE "%s"' % name)
        c.close()
        return Database("postgresql", name=name, port=self.port)

    def stop(self):
        subprocess.run([os.path.join(SERVERS, "postgres.sh"), "stop", self.dir], check=False)

    def __str__(self):
        return "PostgreSQL :%d" % self.port


class MariaServer:
    def __init__(self, env):
        self.env = env
        self.dir = env.path("mariadb")
        self.port = free_port()
        log("starting MariaDB on 127.0.0.1:%d" % self.port)
        subprocess.run([os.path.join(SERVERS, "mariadb.sh"), "start", self.dir, str(self.port)], check=True)
        c = self.admin()
        # zonemesh install creates triggers; binary logging is off here, but
        # keep the documented requirement satisfied either way.
        c.cursor().execute("SET GLOBAL log_bin_trust_function_creators = 1")
        c.close()

    def admin(self):
        import pymysql
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)

    def create_database(self, prefix="zm"):
        name = "%s%d" % (prefix, next(_ids))
        c = self.admin()
        c.cursor().execute("CREATE DATABASE `%s`" % name)
        c.close()
        return Database("mysql", name=name, port=self.port)

    def stop(self):
        subprocess.run([os.path.join(SERVERS, "mariadb.sh"), "stop", self.dir], check=False)

    def __str__(self):
        return "MariaDB :%d" % self.port


def new_database(env, kind, prefix="zm"):
    if kind == "sqlite":
        return Database("sqlite", path=env.path("sqlite", "%s%d.db" % (prefix, next(_ids))))
    if kind == "postgresql":
        return env.pg().create_database(prefix)
    if kind == "mysql":
        return env.mysql().create_database(prefix)
    raise ValueError(kind)


class Database:
    """One PowerDNS database (a file, or a database on a shared server)."""

    def __init__(self, kind, name=None, port=None, path=None):
        self.kind = kind
        self.name = name
        self.port = port
        self.path = path

    def zonemesh_config(self):
        if self.kind == "sqlite":
            return {"type": "sqlite", "path": self.path}
        if self.kind == "postgresql":
            return {"type": "postgresql",
                    "conninfo": "host=127.0.0.1 port=%d dbname=%s user=postgres" % (self.port, self.name)}
        return {"type": "mysql", "host": "127.0.0.1", "port": self.port, "user": "root",
                "password": "", "database": self.name}

    def connect(self):
        return Conn(self)

    def load_pdns_schema(self):
        """The stock PowerDNS schema, no zonemesh (as PowerDNS ships it)."""
        ext = {"sqlite": "sqlite3", "postgresql": "pgsql", "mysql": "mysql"}[self.kind]
        text = open(os.path.join(REPO, "schema", "pdns", "schema.%s.sql" % ext)).read()
        c = self.connect()
        if self.kind == "sqlite":
            c.raw.executescript(text)
        else:
            lines = [l for l in text.splitlines() if not l.strip().startswith("--")]
            for stmt in "\n".join(lines).split(";"):
                if stmt.strip():
                    c.execute(stmt)
        c.close()

    def __str__(self):
        return self.path if self.kind == "sqlite" else "%s/%s" % (self.kind, self.name)


class Conn:
    """Autocommit connection; begin()/commit() for explicit transactions;
    SQL is written with ? placeholders."""

    def __init__(self, db):
        self.db = db
        self.kind = db.kind
        if db.kind == "sqlite":
            self.raw = sqlite3.connect(db.path, timeout=30, isolation_level=None, check_same_thread=False)
        elif db.kind == "postgresql":
            import psycopg2
            self.raw = psycopg2.connect(host="127.0.0.1", port=db.port, user="postgres", dbname=db.name)
            self.raw.autocommit = True
        else:
            import pymysql
            self.raw = pymysql.connect(host="127.0.0.1", port=db.port, user="root", database=db.name,
                                       autocommit=True)
        self.cur = self.raw.cursor()

    def sql(self, text):
        return text if self.kind == "sqlite" else text.replace("?", "%s")

    def execute(self, text, params=()):
        self.cur.execute(self.sql(text), params)
        return self.cur.rowcount

    def query(self, text, params=()):
        self.cur.execute(self.sql(text), params)
        return self.cur.fetchall()

    def scalar(self, text, params=()):
        rows = self.query(text, params)
        return rows[0][0] if rows else None

    def begin(self):
        self.cur.execute("BEGIN")

    def commit(self):
        self.cur.execute("COMMIT")

    def close(self):
        try:
            self.raw.close()
        except Exception:
            pass

    # --- PowerDNS helpers -------------------------------------------------

    def create_zone(self, zone, serial=1):
        self.begin()
        self.execute("INSERT INTO domains (name, type) VALUES (?, 'NATIVE')", (zone,))
        did = self.scalar("SELECT id FROM domains WHERE name = ?", (zone,))
        self.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio) VALUES (?, ?, 'SOA', ?, 3600, 0)",
                     (did, zone, "ns1.%s hostmaster.%s %d 10800 3600 604800 3600" % (zone, zone, serial)))
        self.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio) VALUES (?, ?, 'NS', ?, 3600, 0)",
                     (did, zone, "ns1." + zone))
        self.commit()
        return did

    def zone_id(self, zone):
        return self.scalar("SELECT id FROM domains WHERE name = ?", (zone,))

    def count_zone_records(self, zone):
        return self.scalar("SELECT COUNT(*) FROM records r JOIN domains d ON r.domain_id = d.id WHERE d.name = ?",
                           (zone,))

    def insert_rows(self, domain_id, rows):
        """One multi-row INSERT of (name, content) A records."""
        vals = ", ".join(["(?, ?, 'A', ?, 300, 0)"] * len(rows))
        params = []
        for name, content in rows:
            params += [domain_id, name, content]
        self.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio) VALUES " + vals, params)

    def bulk_generate(self, domain_id, zone, prefix, start, count):
        """INSERT ... SELECT of `count` A records generated by the server
        (names prefix<i>.zone, i from start)."""
        a, b = start, start + count - 1
        if self.kind == "sqlite":
            sql = ("WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
                   "INSERT INTO records (domain_id, name, type, content, ttl, prio) "
                   "SELECT %d, '%s' || i || '.%s', 'A', '10.' || ((i / 65536) %% 256) || '.' || ((i / 256) %% 256) "
                   "|| '.' || (i %% 256), 300, 0 FROM n" % (a, b, domain_id, prefix, zone))
        elif self.kind == "postgresql":
            sql = ("INSERT INTO records (domain_id, name, type, content, ttl, prio) "
                   "SELECT %d, '%s' || i || '.%s', 'A', '10.' || ((i / 65536) %% 256) || '.' || ((i / 256) %% 256) "
                   "|| '.' || (i %% 256), 300, 0 FROM generate_series(%d, %d) AS i" % (domain_id, prefix, zone, a, b))
        else:
            sql = ("INSERT INTO records (domain_id, name, type, content, ttl, prio) "
                   "SELECT %d, CONCAT('%s', seq, '.%s'), 'A', CONCAT('10.', (seq DIV 65536) %% 256, '.', "
                   "(seq DIV 256) %% 256, '.', seq %% 256), 300, 0 FROM seq_%d_to_%d" % (domain_id, prefix, zone, a, b))
        # Literal SQL (no placeholders): '%' must not be doubled for the drivers.
        self.cur.execute(sql.replace("%%", "%") if self.kind == "sqlite" else sql)
