#!/usr/bin/python3
"""paas-rproxy health watcher (role keepalived_vrrp): tells keepalived within milliseconds that nginx died.

keepalived's own checks cannot be fast enough here: vrrp_script intervals are whole seconds, and
track_process needs the kernel's process-events connector, which only the initial network namespace
gets. So this watcher follows nginx and writes a keepalived track_file (inotify-driven):

  * a pidfd on the nginx master (os.pidfd_open): its exit is known at once, without polling;
  * an HTTP probe of the loopback health endpoint every --interval (0.1 s), for an nginx that is alive
    but does not answer: --fall failed probes in a row (a refused connection, a non-2xx answer or no
    answer within --timeout) mark it down, --rise good probes (with a live master) mark it up again.

The track file holds "1" while nginx is healthy and "0" when it is not; keepalived.conf tracks it with
`weight 0 reverse`, so 0 (or a missing file) puts every VRRP instance of this host into FAULT: a master
sends a priority-0 advert and the best backup takes over after its skew time, without waiting for the
master-down timer. The file is replaced atomically (write + rename) and only when the state changes.
A (re)starting watcher keeps the file as it is until it has a verdict, so restarting it moves no VIP.

Only the Python 3 standard library (Ansible needs python3 on every proxy anyway). Linux >= 5.3.
Usage: rproxy_health_watcher.py --config /etc/keepalived/paas-rproxy/health-watcher.json
       rproxy_health_watcher.py --config FILE --once          probe once, print the verdict (exit 0 = healthy)
       rproxy_health_watcher.py --config FILE --check-config  exit 2 with a message when FILE is invalid
SIGUSR1 logs the probe statistics at once (probes, failures, slowest good answer) and starts a new window.
"""
import argparse
import errno
import json
import os
import select
import signal
import socket
import sys
import time

DEFAULTS = {
    "pid_file": "/run/nginx.pid",
    "url": "http://127.0.0.1:8081/healthz",
    "track_file": "/run/rproxy-nginx-healthy",
    "interval": 0.1,
    "timeout": 0.25,
    "fall": 3,
    "rise": 3,
    # SCHED_RR priority of the watcher (0 = normal scheduling); below keepalived's vrrp_rt_priority
    "rt_priority": 0,
    "log_file": "",
    # a probe_stats line (probes, failures, slowest answer) every this many seconds; 0 = never
    "stats_interval": 60,
}


def log(cfg, event, **fields):
    line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z", "event": event, **fields})
    if cfg.get("log_file"):
        try:
            # root appends here: never through a symlink someone planted at the log's name
            fd = os.open(cfg["log_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(line + "\n")
            return
        except OSError:
            pass
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def parse_url(url):
    if not url.startswith("http://"):
        raise ValueError(f"only http:// health URLs are supported, got {url!r}")
    rest = url[len("http://"):]
    hostport, _, path = rest.partition("/")
    host, sep, port = hostport.rpartition(":")
    if not sep:
        host, port = hostport, "80"
    host = host.strip("[]")
    return host, int(port), "/" + path


def process_uids(pid):
    """Real, effective, saved and file-system uid of a process (/proc/PID/status: unlike the owner of
    /proc/PID, which a process that makes itself non-dumpable turns into root, it cannot be faked)."""
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("Uid:"):
                return {int(u) for u in line.split()[1:]}
    return set()


def nginx_master_pid(pid_file):
    """The pid in the pid file when it names a live (not zombie) process called nginx that runs as root
    (or as the watcher's own user), else None. After nginx dies its pid file stays behind: any local user
    may get that pid reused by a process it names "nginx", which must not pass for the master."""
    try:
        with open(pid_file, encoding="ascii") as f:
            pid = int(f.read().strip() or 0)
        if pid <= 0:
            return None
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state = stat[stat.rindex(")") + 2:][:1]
        if comm != "nginx" or state in ("Z", "X"):
            return None  # a stale pid file (pid reused), or a killed master nobody has reaped yet
        if not process_uids(pid) <= {0, os.geteuid()}:
            return None  # a reused pid held by an unprivileged process
        return pid
    except (OSError, ValueError):
        return None


MAX_STATUS_LINE = 1024  # bytes read before the status line's end at most


class Probe:
    """One non-blocking HTTP/1.0 GET, driven by the main loop's poll."""

    def __init__(self, host, port, path, timeout):
        self.deadline = time.monotonic() + timeout
        self.started = time.monotonic()
        self.request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: rproxy-health-watcher\r\n\r\n".encode()
        self.response = b""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        self.sent = False
        self.result = None  # True / False once finished
        self.reason = ""
        err = self.sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            self.finish(False, f"connect: {os.strerror(err)}")

    def events(self):
        return select.POLLIN if self.sent else select.POLLOUT

    def handle(self, revents):
        try:
            if not self.sent:
                err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    return self.finish(False, f"connect: {os.strerror(err)}")
                self.sock.send(self.request)
                self.sent = True
                return None
            chunk = self.sock.recv(4096)
            if chunk:
                self.response += chunk
                if b"\r\n" in self.response:
                    status = self.response.split(b"\r\n", 1)[0].split()
                    ok = len(status) >= 2 and status[1][:1] == b"2"
                    return self.finish(ok, "" if ok else f"status {status[1:2]}")
                if len(self.response) > MAX_STATUS_LINE:
                    # whatever listens there (nginx is down: any local user may) must not feed root's memory
                    return self.finish(False, "no HTTP status line")
                return None
            return self.finish(False, "connection closed without an answer")
        except OSError as e:
            return self.finish(False, f"{e.__class__.__name__}: {e}")

    def check_timeout(self, now):
        if self.result is None and now >= self.deadline:
            self.finish(False, "timeout")

    def finish(self, ok, reason):
        self.result = ok
        self.reason = reason
        self.latency = time.monotonic() - self.started
        try:
            self.sock.close()
        except OSError:
            pass


class Watcher:
    def __init__(self, cfg):
        self.cfg = cfg
        self.host, self.port, self.path = parse_url(cfg["url"])
        self.pid = None
        self.pidfd = None
        self.fails = 0
        self.goods = 0
        self.healthy = self.read_track_file()  # keep what the file says until there is a verdict
        self.stop = False
        self.max_latency = 0.0
        self.stats = {"probes": 0, "failed": 0, "max_ms": 0.0}
        self.stats_due = time.monotonic() + cfg["stats_interval"]
        self.dump_stats = False  # SIGUSR1: log probe_stats now (and start a new window)
        self.file_seen = None  # (inode, mtime) of the track file when it last matched our verdict

    def read_track_file(self):
        try:
            with open(self.cfg["track_file"], encoding="ascii") as f:
                v = f.read().strip()
            return None if v == "" else v != "0"
        except OSError:
            return None

    def write_track_file(self, healthy, reason):
        path = self.cfg["track_file"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            os.unlink(tmp)  # left by a crashed watcher of the same pid
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write("1\n" if healthy else "0\n")
        os.rename(tmp, path)  # keepalived sees IN_MOVED_TO for the track file's name
        changed = self.healthy != healthy
        self.healthy = healthy
        if changed:
            log(self.cfg, "nginx_healthy" if healthy else "nginx_down", reason=reason, pid=self.pid)

    def set_state(self, healthy, reason):
        if self.healthy != healthy:
            self.write_track_file(healthy, reason)

    def keep_track_file(self):
        """Someone else wrote the file (keepalived's init_file at its start resets it to 0): put our
        verdict back. A stat per turn; the file is read only when it changed."""
        if self.healthy is None:
            return
        try:
            st = os.stat(self.cfg["track_file"])
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        if key is not None and key == self.file_seen:
            return
        if self.read_track_file() != self.healthy:
            self.write_track_file(self.healthy, "track file was reset")
            log(self.cfg, "track_file_restored", healthy=self.healthy)
        try:
            st = os.stat(self.cfg["track_file"])
            self.file_seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            self.file_seen = None

    def attach(self):
        """(Re)opens a pidfd on the current nginx master; returns True when there is one."""
        pid = nginx_master_pid(self.cfg["pid_file"])
        if pid is None:
            self.detach()
            return False
        if pid == self.pid and self.pidfd is not None:
            return True
        self.detach()
        try:
            self.pidfd = os.pidfd_open(pid)
            self.pid = pid
            log(self.cfg, "nginx_master", pid=pid)
            return True
        except ProcessLookupError:
            return False

    def detach(self):
        if self.pidfd is not None:
            os.close(self.pidfd)
        self.pidfd = None
        self.pid = None

    def on_master_exit(self):
        old = self.pid
        self.detach()
        # a binary upgrade (USR2) leaves a new master behind: follow it; a crash or stop leaves none
        pid = nginx_master_pid(self.cfg["pid_file"])
        if pid is not None and pid != old and self.attach():
            log(self.cfg, "nginx_master_replaced", old_pid=old, pid=self.pid)
            return
        self.goods = 0
        self.set_state(False, f"nginx master {old} exited")

    def on_probe(self, probe):
        self.max_latency = max(self.max_latency, probe.latency)
        self.stats["probes"] += 1
        self.stats["failed"] += 0 if probe.result else 1
        if probe.result:
            self.stats["max_ms"] = max(self.stats["max_ms"], probe.latency * 1000)
        if self.dump_stats or (self.cfg["stats_interval"] > 0 and time.monotonic() >= self.stats_due):
            self.dump_stats = False
            # the slowest good answer against the timeout: the margin before load could fail a probe
            log(self.cfg, "probe_stats", probes=self.stats["probes"], failed=self.stats["failed"],
                max_ms=round(self.stats["max_ms"], 1), timeout_ms=round(self.cfg["timeout"] * 1000), healthy=self.healthy)
            self.stats = {"probes": 0, "failed": 0, "max_ms": 0.0}
            self.stats_due = time.monotonic() + self.cfg["stats_interval"]
        if probe.result:
            self.fails = 0
            self.goods += 1
            if self.goods >= self.cfg["rise"] and (self.pidfd is not None or self.attach()):
                self.set_state(True, f"{self.goods} good probes")
        else:
            self.goods = 0
            self.fails += 1
            if self.fails >= self.cfg["fall"]:
                self.set_state(False, f"{self.fails} failed probes, last: {probe.reason}")

    def run(self):
        interval = self.cfg["interval"]
        timeout = self.cfg["timeout"]
        poller = select.poll()
        next_probe = time.monotonic()
        probe = None
        log(self.cfg, "watcher_start", pid=os.getpid(), config=self.cfg, healthy=self.healthy)
        while not self.stop:
            now = time.monotonic()
            if probe is None and now >= next_probe:
                if self.pidfd is None:
                    self.attach()
                probe = Probe(self.host, self.port, self.path, timeout)
                next_probe = max(next_probe + interval, now)
            fds = {}
            if self.pidfd is not None:
                fds[self.pidfd] = "pidfd"
                poller.register(self.pidfd, select.POLLIN)
            if probe is not None and probe.result is None:
                fds[probe.sock.fileno()] = "probe"
                poller.register(probe.sock.fileno(), probe.events())
            if probe is None:
                wake = next_probe
            elif probe.result is not None:
                wake = now  # refused at once (nothing listens): take the verdict now
            else:
                wake = min(next_probe, probe.deadline)
            try:
                events = poller.poll(max(0.0, wake - time.monotonic()) * 1000)
            except InterruptedError:
                events = []
            for fd in fds:
                poller.unregister(fd)
            for fd, revents in events:
                kind = fds.get(fd)
                if kind == "pidfd":
                    self.on_master_exit()
                elif kind == "probe" and probe is not None:
                    probe.handle(revents)
            if probe is not None:
                probe.check_timeout(time.monotonic())
                if probe.result is not None:
                    self.on_probe(probe)
                    probe = None
                    self.keep_track_file()
        log(self.cfg, "watcher_stop", healthy=self.healthy, max_probe_latency_ms=round(self.max_latency * 1000, 1))


def check_track_file_dir(path):
    """The track file decides whether this host may hold VIPs: nobody but root (or the watcher's user) may
    create, replace or link files where it lives. Its directory (or, when missing, the nearest existing
    ancestor, where makedirs creates it) must belong to them and be writable by nobody else; the
    directories above it may be shared only with the sticky bit (like /tmp), which stops renames of
    other users' entries."""
    trusted = {0, os.geteuid()}
    d = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(d):
        d = os.path.dirname(d)
    own = True
    while True:
        st = os.lstat(d)
        shared = st.st_mode & 0o022
        if st.st_uid not in trusted or (shared and (own or not st.st_mode & 0o1000)):
            raise ValueError(f"{d} (uid {st.st_uid}, mode {oct(st.st_mode & 0o7777)}) is owned or writable by another user:"
                             f" they could replace the track file {path}; use a directory of root, mode 0755")
        if d == "/":
            return
        d, own = os.path.dirname(d), False


def load_config(path):
    cfg = dict(DEFAULTS)
    if path:
        with open(path, encoding="utf-8") as f:
            cfg.update(json.load(f))
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
    for k in ("interval", "timeout"):
        cfg[k] = float(cfg[k])
        if not 0.01 <= cfg[k] <= 60:
            raise ValueError(f"{k} must be within 0.01..60 s, got {cfg[k]}")
    for k in ("fall", "rise"):
        cfg[k] = int(cfg[k])
        if not 1 <= cfg[k] <= 100:
            raise ValueError(f"{k} must be within 1..100, got {cfg[k]}")
    cfg["rt_priority"] = int(cfg["rt_priority"])
    cfg["stats_interval"] = float(cfg["stats_interval"])
    parse_url(cfg["url"])
    check_track_file_dir(cfg["track_file"])
    return cfg


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="", help="JSON settings (keys: " + ", ".join(DEFAULTS) + ")")
    ap.add_argument("--once", action="store_true", help="probe once and print the verdict")
    ap.add_argument("--check-config", action="store_true", help="only check the configuration")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"rproxy_health_watcher: bad configuration: {e}\n")
        return 2
    if args.check_config:
        return 0
    if args.once:
        host, port, path = parse_url(cfg["url"])
        probe = Probe(host, port, path, cfg["timeout"])
        poller = select.poll()
        while probe.result is None:
            poller.register(probe.sock.fileno(), probe.events())
            ev = poller.poll(max(0.0, probe.deadline - time.monotonic()) * 1000)
            poller.unregister(probe.sock.fileno())
            for _, revents in ev:
                probe.handle(revents)
            probe.check_timeout(time.monotonic())
        pid = nginx_master_pid(cfg["pid_file"])
        healthy = bool(probe.result) and pid is not None
        print(json.dumps({"healthy": healthy, "master_pid": pid, "probe": probe.reason or "ok",
                          "latency_ms": round(probe.latency * 1000, 1)}))
        return 0 if healthy else 1
    if cfg["rt_priority"] > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(cfg["rt_priority"]))
        except OSError as e:
            log(cfg, "rt_priority_refused", error=str(e))
    watcher = Watcher(cfg)

    def on_signal(_sig, _frame):
        watcher.stop = True

    def on_usr1(_sig, _frame):
        watcher.dump_stats = True

    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # a bug in one loop turn must not leave keepalived blind: log it and go on
    while not watcher.stop:
        try:
            watcher.run()
        except Exception as e:  # noqa: BLE001
            log(cfg, "watcher_error", error=f"{e.__class__.__name__}: {e}")
            time.sleep(cfg["interval"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
