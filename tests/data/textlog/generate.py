"""Writes `corpus.jsonl`: plain text log lines in 33 real formats, each with its true level and time.

Run: `.venv/bin/python -m tests.data.textlog.generate` (deterministic: the same seed writes the same file;
`tests/unit/test_text_corpus.py` checks the committed file is what this script writes).

Every line is written here from the format's documentation (log4j/logback layouts, Python logging's default
formats, RFC 3164 and RFC 5424, the Linux printk levels, glog's header, Android logcat's `brief` and
`threadtime`, nginx and Apache error and access logs, PostgreSQL's `log_line_prefix`, MySQL 8's error log,
Redis's log line, …); no line is copied from a third-party data set. Messages are made up, and many are
tricky on purpose: level words in running prose (`no error found`, `retry after error 10061`), numbers and
ids that look like dates, times near New Year (the year of a syslog line must be inferred), wall times on
daylight-saving days in the tenant's zone, and multi-line messages.

Each record: `format`, `line`, `level` (the true level; `info` for a line that writes none), `time` (the true
instant in UTC, RFC 3339 with microseconds; `null` when the line writes no time, so the event time must be
the arrival time), `received_at` (the arrival time, UTC) and `zone` (the tenant's time zone).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

LINES_PER_FORMAT = 60
SEED = 20261127
CORPUS = Path(__file__).with_name("corpus.jsonl")

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Messages whose words must never decide the level (prose), and messages that are plainly one level.
PROSE = (
    "no error found in 12 files",
    "retrying request after error 10061 from upstream",
    "checked 4 disks, warning threshold not reached",
    "user asked for debug output, ignoring",
    "the fatal flag is cleared for job 77",
    "connection reset by peer; will retry in 5s",
    "finished compaction of 3 segments (errors=0)",
    "scheduler says: info pages refreshed",
    "Closing 2 idle connections",
    "request completed status=200 duration_ms=14",
    "cache hit ratio 0.93 over 10000 lookups",
    "session 8f2c1e opened for user alice",
    "received SIGHUP, reloading configuration",
    "critical section held for 3 ms",
    "recovered from panic in handler /healthz",
    "token refresh failed once, second attempt ok",
    "2024-01-01 is a holiday, skipping report",
    "payload 081109 203615 stored",
)
ERRORS = (
    "Failed to connect to db-2:5432: connection refused",
    "NullPointerException in OrderService.place",
    "disk /dev/sda1 is full",
    "could not write block 4431 to replica",
    "timeout after 30000 ms waiting for lock",
)
WARNINGS = (
    "slow query took 2300 ms",
    "retry 2/5 for task 991",
    "certificate expires in 9 days",
    "heap usage at 87%",
)
DEBUGS = ("entering state IDLE", "payload size 512 bytes", "cache key user:42 missing")
FATALS = ("out of memory, aborting", "cannot start: port 8080 in use", "data directory is corrupt")

LEVEL_MESSAGES: dict[str, tuple[str, ...]] = {
    "trace": DEBUGS,
    "debug": DEBUGS,
    "info": PROSE,
    "warn": WARNINGS,
    "error": ERRORS + PROSE[:3],
    "fatal": FATALS,
}


@dataclass(frozen=True)
class Record:
    format: str
    line: str
    level: str
    time: datetime | None
    received_at: datetime
    zone: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": self.format,
                "line": self.line,
                "level": self.level,
                "time": None if self.time is None else iso(self.time),
                "received_at": iso(self.received_at),
                "zone": self.zone,
            },
            ensure_ascii=False,
        )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Writer:
    """Random instants, levels and messages for one format."""

    def __init__(self, rng: random.Random, zone: str) -> None:
        self.rng = rng
        self.zone = ZoneInfo(zone)
        self.zone_name = zone

    def instant(self, *, start: datetime, days: float, precision_us: int) -> datetime:
        """A random instant whose wall time in the zone is not ambiguous, truncated to `precision_us`."""
        while True:
            moment = start + timedelta(seconds=self.rng.uniform(0, days * 86400))
            micros = moment.microsecond - moment.microsecond % precision_us
            moment = moment.replace(microsecond=micros)
            wall = moment.astimezone(self.zone).replace(tzinfo=None, fold=0)
            back = wall.replace(tzinfo=self.zone).astimezone(UTC)
            again = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
            if back == moment and again == moment:
                return moment

    def wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def arrival(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.rng.uniform(0.05, 8.0))

    def level(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def message(self, level: str) -> str:
        return self.rng.choice(LEVEL_MESSAGES[level])

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return self.rng.choice(options)


def ms(moment: datetime) -> str:
    return f"{moment.microsecond // 1000:03d}"


Generator = Callable[[Writer, int], list[tuple[str, str, datetime | None, datetime]]]
"""(writer, index) → [(line, level, true time or None, received_at)]."""

FORMATS: dict[str, tuple[str, Generator]] = {}


def fmt(name: str, zone: str = "UTC") -> Callable[[Generator], Generator]:
    def register(generate: Generator) -> Generator:
        FORMATS[name] = (zone, generate)
        return generate

    return register


LOG4J_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR", "fatal": "FATAL", "trace": "TRACE"}
COMMON_WEIGHTS = {"debug": 2, "info": 6, "warn": 3, "error": 3, "fatal": 1}
START = datetime(2026, 3, 20, tzinfo=UTC)


@fmt("hadoop_log4j")
def hadoop(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1000)
    level = w.level(COMMON_WEIGHTS)
    wall = w.wall(t)
    thread = w.pick(
        ["main", "IPC Server handler 3 on 8020", "RMCommunicator Allocator", "AsyncDispatcher event handler"]
    )
    logger = w.pick(["org.apache.hadoop.mapreduce.v2.app.MRAppMaster", "org.apache.hadoop.ipc.Server"])
    line = f"{wall:%Y-%m-%d %H:%M:%S},{ms(wall)} {LOG4J_LEVELS[level]} [{thread}] {logger}: {w.message(level)}"
    return [(line, level, t, w.arrival(t))]


@fmt("zookeeper")
def zookeeper(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1000)
    level = w.level({"info": 5, "warn": 4, "error": 2, "debug": 1})
    wall = w.wall(t)
    where = w.pick(
        ["QuorumPeer[myid=2]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@818", "NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181"]
    )
    name = f"{LOG4J_LEVELS[level]:<5}"
    line = f"{wall:%Y-%m-%d %H:%M:%S},{ms(wall)} - {name} [{where}] - {w.message(level)}"
    return [(line, level, t, w.arrival(t))]


@fmt("hdfs")
def hdfs(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=datetime(2008, 11, 9, tzinfo=UTC), days=3, precision_us=1_000_000)
    level = w.level({"info": 8, "warn": 2, "error": 1})
    wall = w.wall(t)
    component = w.pick(["dfs.DataNode$PacketResponder", "dfs.FSNamesystem", "dfs.DataNode$DataXceiver"])
    pid = w.rng.randint(10, 35000)
    line = f"{wall:%y%m%d %H%M%S} {pid} {LOG4J_LEVELS[level]} {component}: {w.message(level)}"
    return [(line, level, t, w.arrival(t) + timedelta(days=6000))]


@fmt("spark")
def spark(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=datetime(2017, 6, 9, tzinfo=UTC), days=10, precision_us=1_000_000)
    level = w.level({"info": 8, "warn": 2, "error": 2})
    wall = w.wall(t)
    logger = w.pick(["executor.CoarseGrainedExecutorBackend", "storage.BlockManager", "spark.SecurityManager"])
    line = f"{wall:%y/%m/%d %H:%M:%S} {LOG4J_LEVELS[level]} {logger}: {w.message(level)}"
    return [(line, level, t, w.arrival(t))]


@fmt("openstack", "UTC")
def openstack(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=5, precision_us=1000)
    level = w.level({"info": 6, "warn": 2, "error": 2, "debug": 1})
    wall = w.wall(t)
    request = f"req-{w.rng.getrandbits(32):08x}-1c2d-4e5f-8a9b-{w.rng.getrandbits(48):012x}"
    line = (
        f"{wall:%Y-%m-%d %H:%M:%S}.{ms(wall)} {w.rng.randint(1000, 30000)} {LOG4J_LEVELS[level]} "
        f"nova.compute.manager [{request} 113d3a99c3da401fbd62cc2caa5b96d2 - - -] {w.message(level)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("windows_cbs", "America/Los_Angeles")
def windows_cbs(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=datetime(2026, 3, 1, tzinfo=UTC), days=20, precision_us=1_000_000)
    level = w.level({"info": 8, "warn": 2, "error": 2})
    name = {"info": "Info", "warn": "Warning", "error": "Error"}[level]
    component = w.pick(["CBS", "CSI", "DPX"])
    wall = w.wall(t)
    line = f"{wall:%Y-%m-%d %H:%M:%S}, {name:<22}{component:<7}{w.message(level)}"
    return [(line, level, t, w.arrival(t))]


ANDROID_LETTERS = {"trace": "V", "debug": "D", "info": "I", "warn": "W", "error": "E", "fatal": "F"}


@fmt("android_threadtime", "Asia/Shanghai")
def android_threadtime(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    start = datetime(2026, 12, 31, 15, 59, tzinfo=UTC) if index % 10 == 0 else START
    t = w.instant(start=start, days=0.0006 if index % 10 == 0 else 10, precision_us=1000)
    level = w.level({"trace": 1, "debug": 3, "info": 5, "warn": 2, "error": 2, "fatal": 1})
    wall = w.wall(t)
    tag = w.pick(["WindowManager", "ActivityManager", "PowerManagerService", "chatty"])
    line = (
        f"{wall:%m-%d %H:%M:%S}.{ms(wall)} {w.rng.randint(100, 32000):>5} {w.rng.randint(100, 32000):>5} "
        f"{ANDROID_LETTERS[level]} {tag}: {w.message(level)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("android_brief")
def android_brief(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=10, precision_us=1000)
    level = w.level({"trace": 1, "debug": 3, "info": 5, "warn": 2, "error": 2, "fatal": 1})
    tag = w.pick(["WindowManager", "dalvikvm", "AndroidRuntime"])
    line = f"{ANDROID_LETTERS[level]}/{tag}({w.rng.randint(100, 32000):>5}): {w.message(level)}"
    return [(line, level, None, t)]


PYTHON_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "error": "ERROR", "fatal": "CRITICAL"}


@fmt("python_default")
def python_default(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=10, precision_us=1000)
    level = w.level(COMMON_WEIGHTS)
    logger = w.pick(["root", "app.db", "urllib3.connectionpool"])
    return [(f"{PYTHON_LEVELS[level]}:{logger}:{w.message(level)}", level, None, t)]


@fmt("python_asctime", "Europe/Berlin")
def python_asctime(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    # Around the spring-forward night of 2026-03-29 in Berlin: wall times on both sides of the change.
    t = w.instant(start=datetime(2026, 3, 28, 22, tzinfo=UTC), days=0.3, precision_us=1000)
    level = w.level(COMMON_WEIGHTS)
    wall = w.wall(t)
    name = w.pick(["myapp", "myapp.worker", "billing"])
    message = w.message(level)
    if index % 12 == 0:
        message += '\nTraceback (most recent call last):\n  File "x.py", line 3, in <module>\nValueError: bad'
    line = f"{wall:%Y-%m-%d %H:%M:%S},{ms(wall)} - {name} - {PYTHON_LEVELS[level]} - {message}"
    return [(line, level, t, w.arrival(t))]


NGINX_LEVELS = {"debug": "debug", "info": "info", "warn": "warn", "error": "error", "fatal": "crit"}


@fmt("nginx_error", "Europe/Paris")
def nginx_error(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=15, precision_us=1_000_000)
    level = w.level({"info": 2, "warn": 3, "error": 6, "fatal": 1})
    if level == "info" and index % 2:
        name = "notice"
    elif level == "fatal":
        name = w.pick(["crit", "alert", "emerg"])
    else:
        name = NGINX_LEVELS[level]
    wall = w.wall(t)
    pid = w.rng.randint(100, 9000)
    line = (
        f"{wall:%Y/%m/%d %H:%M:%S} [{name}] {pid}#{pid}: *{w.rng.randint(1, 99999)} {w.message(level)}, "
        f'client: 10.0.{w.rng.randint(0, 255)}.{w.rng.randint(1, 254)}, server: shop.example, request: "GET / HTTP/1.1"'
    )
    return [(line, level, t, w.arrival(t))]


@fmt("apache_error", "America/Chicago")
def apache_error(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=15, precision_us=1 if index % 2 else 1_000_000)
    level = w.level({"info": 2, "warn": 2, "error": 5, "fatal": 1, "debug": 1, "trace": 1})
    wall = w.wall(t)
    day = f"{WEEKDAYS[wall.weekday()]} {MONTHS[wall.month - 1]} {wall.day:02d}"
    name = {"info": "notice", "warn": "warn", "error": "error", "fatal": "crit", "debug": "debug", "trace": "trace3"}
    if index % 2:
        module = w.pick(["core", "ssl", "proxy", "mpm_event"])
        line = (
            f"[{day} {wall:%H:%M:%S}.{wall.microsecond:06d} {wall.year}] [{module}:{name[level]}] "
            f"[pid {w.rng.randint(100, 99999)}:tid {w.rng.getrandbits(40)}] [client 192.0.2.{w.rng.randint(1, 254)}:"
            f"{w.rng.randint(1024, 65535)}] AH00{w.rng.randint(100, 999)}: {w.message(level)}"
        )
    else:
        line = f"[{day} {wall:%H:%M:%S} {wall.year}] [{name[level]}] {w.message(level)}"
    return [(line, level, t, w.arrival(t))]


@fmt("access_combined", "UTC")
def access_combined(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=15, precision_us=1_000_000)
    offset_minutes = w.rng.choice([-420, -300, 0, 60, 120, 330])
    local = t.astimezone(UTC) + timedelta(minutes=offset_minutes)
    sign = "+" if offset_minutes >= 0 else "-"
    zone = f"{sign}{abs(offset_minutes) // 60:02d}{abs(offset_minutes) % 60:02d}"
    status = w.pick(["200", "200", "304", "404", "500", "502"])
    path = w.pick(["/index.html", "/api/v1/orders?id=ERROR", "/static/app.js", "/login?next=/warn"])
    line = (
        f"203.0.113.{w.rng.randint(1, 254)} - {w.pick(['-', 'alice', 'bob'])} "
        f"[{local.day:02d}/{MONTHS[local.month - 1]}/{local.year}:{local:%H:%M:%S} {zone}] "
        f'"GET {path} HTTP/1.1" {status} {w.rng.randint(0, 90000)} "-" "Mozilla/5.0 (X11; Linux x86_64)"'
    )
    return [(line, "info", t, w.arrival(t))]


@fmt("syslog_rfc3164", "America/New_York")
def syslog_bsd(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    if index % 6 == 0:  # the last seconds of a year, read in the first seconds of the next one
        t = w.instant(start=datetime(2027, 1, 1, 4, 59, 50, tzinfo=UTC), days=0.0001, precision_us=1_000_000)
        received = datetime(2027, 1, 1, 5, 0, 5, tzinfo=UTC)
    else:
        t = w.instant(start=START, days=200, precision_us=1_000_000)
        received = w.arrival(t)
    wall = w.wall(t)
    host = w.pick(["combo", "LabSZ", "web-01", "calvisitor-10-105-160-95"])
    program = w.pick(["sshd[24200]", "sshd(pam_unix)[19939]", "kernel", "CRON[4401]", "systemd[1]", "su"])
    kind = index % 5
    if kind == 0 and program.startswith("sshd"):
        level, message = "error", "error: Received disconnect from 103.99.0.122: 14: No more user authentication"
    elif kind == 1 and program.startswith("sshd"):
        level, message = "fatal", "fatal: Read from socket failed: Connection reset by peer [preauth]"
    else:
        level, message = "info", w.pick([*PROSE, "authentication failure; logname= uid=0 euid=0 tty=ssh"])
    line = f"{MONTHS[wall.month - 1]} {wall.day:>2} {wall:%H:%M:%S} {host} {program}: {message}"
    return [(line, level, t, received)]


SEVERITIES = {"fatal": (0, 1, 2), "error": (3,), "warn": (4,), "info": (5, 6), "debug": (7,)}


@fmt("syslog_pri", "UTC")
def syslog_pri(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=100, precision_us=1_000_000)
    level = w.level({"fatal": 1, "error": 3, "warn": 2, "info": 5, "debug": 2})
    severity = w.rng.choice(SEVERITIES[level])
    facility = w.rng.choice([0, 1, 3, 4, 10, 16, 23])
    wall = w.wall(t)
    program = w.pick(["su", "named[811]", "dhcpd", "kernel"])
    line = (
        f"<{facility * 8 + severity}>{MONTHS[wall.month - 1]} {wall.day:>2} {wall:%H:%M:%S} router-7 {program}: "
        f"{w.pick(PROSE)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("syslog_rfc5424", "UTC")
def syslog_rfc5424(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=30, precision_us=1000)
    level = w.level({"fatal": 1, "error": 3, "warn": 2, "info": 5, "debug": 2})
    severity = w.rng.choice(SEVERITIES[level])
    offset = timedelta(hours=w.rng.choice([-7, 0, 2]))
    local = (t + offset).replace(tzinfo=None)
    zone = "Z" if not offset else f"{'+' if offset > timedelta(0) else '-'}{abs(offset).seconds // 3600:02d}:00"
    data = '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]' if index % 2 else "-"
    line = (
        f"<{16 * 8 + severity}>1 {local:%Y-%m-%dT%H:%M:%S}.{ms(local)}{zone} mymachine.example.com evntslog "
        f"{w.rng.randint(100, 999)} ID47 {data} {w.pick(PROSE)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("kernel_printk")
def kernel_printk(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=10, precision_us=1000)
    level = w.level({"fatal": 1, "error": 3, "warn": 2, "info": 4, "debug": 1})
    severity = w.rng.choice(SEVERITIES[level])
    uptime = f"{w.rng.uniform(1, 900000):12.6f}"
    subsystem = w.pick(["usb 1-1", "EXT4-fs (sda1)", "e1000e 0000:00:19.0 eth0", "audit"])
    line = f"<{severity}>[{uptime}] {subsystem}: {w.pick(PROSE)}"
    return [(line, level, None, t)]


@fmt("glog", "UTC")
def glog(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=60, precision_us=1)
    level = w.level({"info": 5, "warn": 2, "error": 3, "fatal": 1})
    letter = {"info": "I", "warn": "W", "error": "E", "fatal": "F"}[level]
    wall = w.wall(t)
    source = w.pick(["server.go", "controller.cc", "reflector.go"])
    line = (
        f"{letter}{wall:%m%d %H:%M:%S}.{wall.microsecond:06d} {w.rng.randint(1, 99999):>7} "
        f"{source}:{w.rng.randint(1, 999)}] {w.message(level)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("bgl")
def bgl(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=datetime(2005, 6, 3, tzinfo=UTC), days=30, precision_us=1_000_000)
    level = w.level({"info": 6, "warn": 1, "error": 2, "fatal": 3})
    name = {"info": "INFO", "warn": "WARNING", "error": w.pick(["ERROR", "SEVERE"]), "fatal": "FATAL"}[level]
    rack, midplane, card = w.rng.randint(0, 77), w.rng.randint(0, 1), w.rng.randint(0, 15)
    node = f"R{rack:02d}-M{midplane}-N{card}-C:J{w.rng.randint(2, 17):02d}-U11"
    wall = t + timedelta(hours=-7)  # the machine wrote its local (Pacific) time in the second date
    flag = w.pick(["-", "-", "-", "KERNDTLB", "APPREAD"])
    component = w.pick(["KERNEL", "APP", "MMCS", "DISCOVERY"])
    line = (
        f"{flag} {int(t.timestamp())} {wall:%Y.%m.%d} {node} {wall:%Y-%m-%d-%H.%M.%S}.{w.rng.randint(0, 999999):06d} "
        f"{node} RAS {component} {name} "
        f"{w.pick(['instruction cache parity error corrected', 'ciod: LOGIN chdir failed', 'generating core.2275'])}"
    )
    return [(line, level, t, w.arrival(t) + timedelta(days=7000))]


@fmt("thunderbird")
def thunderbird(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=datetime(2005, 11, 9, tzinfo=UTC), days=30, precision_us=1_000_000)
    wall = t + timedelta(hours=-8)
    host = f"dn{w.rng.randint(1, 999)}"
    flag = w.pick(["-", "-", "-", "VAPI", "ECC"])
    program = w.pick(["crond(pam_unix)[2915]", "kernel", "sshd[1234]", "ntpd[4455]"])
    line = (
        f"{flag} {int(t.timestamp())} {wall:%Y.%m.%d} {host} {MONTHS[wall.month - 1]} {wall.day} {wall:%H:%M:%S} "
        f"{host}/{host} {program}: {w.pick(PROSE)}"
    )
    return [(line, "info", t, w.arrival(t) + timedelta(days=7000))]


@fmt("healthapp", "Asia/Shanghai")
def healthapp(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=datetime(2026, 12, 23, tzinfo=UTC), days=5, precision_us=1000)
    wall = w.wall(t)
    component = w.pick(["Step_LSC", "Step_SPUtils", "Step_StandReportReceiver", "HiH_HiHealthDataInsertStore"])
    line = (
        f"{wall:%Y%m%d-%H:%M:%S}:{wall.microsecond // 1000}|{component}|{w.rng.randint(30000000, 30009999)}|"
        + w.pick(
            [
                "onStandStepChanged 3579",
                "flush sensor data",
                "onReceive action: android.intent.action.SCREEN_ON",
                "REPORT : 7007 5002 150000 240",
            ]
        )
    )
    return [(line, "info", t, w.arrival(t))]


@fmt("proxifier", "Asia/Hong_Kong")
def proxifier(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=datetime(2026, 10, 30, tzinfo=UTC), days=3, precision_us=1_000_000)
    wall = w.wall(t)
    app = w.pick(["chrome.exe", "Skype.exe", "svchost.exe *64", "putty.exe"])
    target = w.pick(["proxy.cse.cuhk.edu.hk:5070", "play.google.com:443", "203.0.113.9:80"])
    if index % 4 == 0:
        level = "error"
        message = (
            "error : Could not connect to proxy proxy.cse.cuhk.edu.hk:5070 - connection attempt failed with error 10061"
        )
    else:
        level, message = (
            "info",
            w.pick(
                [
                    "open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS",
                    "close, 1190 bytes (1.16 KB) sent, 1671 bytes received, lifetime 00:02",
                ]
            ),
        )
    line = f"[{wall:%m.%d %H:%M:%S}] {app} - {target} {message}"
    return [(line, level, t, w.arrival(t))]


REDIS_SYMBOLS = {"debug": ".", "info": "*", "warn": "#"}


@fmt("redis", "UTC")
def redis(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1000)
    level = w.level({"debug": 2, "info": 6, "warn": 2})
    wall = w.wall(t)
    role = w.pick(["M", "S", "C", "X"])
    line = (
        f"{w.rng.randint(1, 99999)}:{role} {wall.day:02d} {MONTHS[wall.month - 1]} {wall.year} "
        f"{wall:%H:%M:%S}.{ms(wall)} {REDIS_SYMBOLS[level]} {w.message(level)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("postgresql", "UTC")
def postgresql(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1000)
    level = w.level({"debug": 1, "info": 6, "warn": 2, "error": 3, "fatal": 1})
    name = {"debug": "DEBUG1", "info": "LOG", "warn": "WARNING", "error": "ERROR", "fatal": w.pick(["FATAL", "PANIC"])}
    line = f"{t:%Y-%m-%d %H:%M:%S}.{ms(t)} UTC [{w.rng.randint(100, 99999)}] {name[level]}:  {w.message(level)}"
    return [(line, level, t, w.arrival(t))]


@fmt("mysql")
def mysql(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1)
    level = w.level({"info": 6, "warn": 3, "error": 3})
    name = {"info": w.pick(["Note", "System"]), "warn": "Warning", "error": "ERROR"}[level]
    line = (
        f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}Z {w.rng.randint(0, 40)} [{name}] "
        f"[MY-0{w.rng.randint(10000, 13999)}] [{w.pick(['Server', 'InnoDB', 'Repl'])}] {w.message(level)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("logback_time_only", "Europe/London")
def logback(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    if index % 8 == 0:  # written just before midnight, read just after
        t = w.instant(start=datetime(2026, 6, 10, 22, 59, 55, tzinfo=UTC), days=0.00004, precision_us=1000)
        received = datetime(2026, 6, 10, 23, 0, 2, tzinfo=UTC)
    else:
        t = w.instant(start=START, days=20, precision_us=1000)
        received = w.arrival(t)
    level = w.level({"trace": 1, "debug": 2, "info": 5, "warn": 2, "error": 3})
    wall = w.wall(t)
    thread = w.pick(["main", "http-nio-8080-exec-3", "scheduling-1"])
    line = f"{wall:%H:%M:%S}.{ms(wall)} [{thread}] {LOG4J_LEVELS[level]:<5} c.e.shop.OrderService - {w.message(level)}"
    return [(line, level, t, received)]


@fmt("spring_boot")
def spring_boot(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1000)
    level = w.level({"trace": 1, "debug": 2, "info": 5, "warn": 2, "error": 3})
    local = t.astimezone(ZoneInfo("Europe/Madrid"))
    stamp = local.isoformat(timespec="milliseconds")
    line = (
        f"{stamp} {LOG4J_LEVELS[level]:>5} {w.rng.randint(1000, 99999)} --- "
        f"[{w.pick(['main', 'nio-8080-exec-1']):>15}] "
        f"o.s.b.w.embedded.tomcat.TomcatWebServer  : {w.message(level)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("tomcat", "Australia/Sydney")
def tomcat(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=datetime(2026, 4, 1, tzinfo=UTC), days=10, precision_us=1000)  # DST ends 2026-04-05
    level = w.level({"debug": 1, "info": 5, "warn": 2, "error": 3})
    name = {"debug": "FINE", "info": "INFO", "warn": "WARNING", "error": "SEVERE"}[level]
    wall = w.wall(t)
    line = (
        f"{wall.day:02d}-{MONTHS[wall.month - 1]}-{wall.year} {wall:%H:%M:%S}.{ms(wall)} {name} [main] "
        f"org.apache.catalina.startup.Catalina.start {w.message(level)}"
    )
    return [(line, level, t, w.arrival(t))]


@fmt("zap_console")
def zap_console(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1000)
    level = w.level({"debug": 2, "info": 5, "warn": 2, "error": 3, "fatal": 1})
    name = {"debug": "debug", "info": "info", "warn": "warn", "error": "error", "fatal": "fatal"}[level]
    line = (
        f"{t:%Y-%m-%dT%H:%M:%S}.{ms(t)}Z\t{name}\tcontroller/reconcile.go:{w.rng.randint(10, 400)}\t"
        f'{w.message(level)}\t{{"object": "default/web-{w.rng.randint(1, 9)}"}}'
    )
    return [(line, level, t, w.arrival(t))]


@fmt("epoch_prefixed")
def epoch_prefixed(w: Writer, index: int) -> list[tuple[str, str, datetime | None, datetime]]:
    kind = index % 4  # seconds with a fraction, milliseconds, microseconds, nanoseconds
    t = w.instant(start=START, days=20, precision_us=1000 if kind == 1 else 1)
    level = w.level(COMMON_WEIGHTS)
    micros = int(t.timestamp()) * 1_000_000 + t.microsecond
    stamp = (f"{micros // 1_000_000}.{t.microsecond:06d}", str(micros // 1000), str(micros), str(micros * 1000))[kind]
    line = f"{stamp} {LOG4J_LEVELS[level]} worker-{w.rng.randint(1, 9)} {w.message(level)}"
    return [(line, level, t, w.arrival(t))]


@fmt("go_std", "Asia/Kolkata")
def go_std(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1_000_000)
    wall = w.wall(t)
    return [(f"{wall:%Y/%m/%d %H:%M:%S} {w.pick(PROSE)}", "info", t, w.arrival(t))]


@fmt("key_value_header")
def key_value_header(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1000)
    level = w.level(COMMON_WEIGHTS)
    spellings = {
        "debug": ["debug"],
        "info": ["info"],
        "warn": ["warn", "warning"],
        "error": ["error"],
        "fatal": ["fatal"],
    }
    value = w.pick(spellings[level])
    line = f"{t:%Y-%m-%dT%H:%M:%S}.{ms(t)}Z level={value} component=scheduler {w.pick(PROSE)}"
    return [(line, level, t, w.arrival(t))]


@fmt("plain_prose")
def plain_prose(w: Writer, _: int) -> list[tuple[str, str, datetime | None, datetime]]:
    t = w.instant(start=START, days=20, precision_us=1000)
    sentence = w.pick(
        [
            *PROSE,
            "User reported an error on the checkout page",
            "Debugging session started by alice",
            "Critical path computed in 3 ms",
            "we saw a WARNING banner in the old UI",
            "Errors: none",
            "the job failed over to the standby and is healthy",
        ]
    )
    return [(sentence, "info", None, t)]


def records() -> list[Record]:
    rng = random.Random(SEED)
    out: list[Record] = []
    for name, (zone, generate) in FORMATS.items():
        writer = Writer(rng, zone)
        for index in range(LINES_PER_FORMAT):
            for line, level, time, received in generate(writer, index):
                out.append(Record(name, line, level, time, received, zone))
    return out


def render() -> str:
    return "".join(record.to_json() + "\n" for record in records())


if __name__ == "__main__":
    CORPUS.write_text(render(), encoding="utf-8")
    print(f"wrote {CORPUS} ({len(FORMATS)} formats, {LINES_PER_FORMAT} lines each)")
