#!/usr/bin/python3
# -*- coding: utf-8 -*-
# paas-rproxy: the warm Ansible controller (design and protocol: generator/src/runner/README.md).
#
# A long-lived process that imports ansible-playbook's CLI machinery ONCE (0.4-0.6 s per process on a small
# machine) and, per run request received on a unix socket, forks a child that runs PlaybookCLI.cli_executor(argv)
# exactly as /usr/bin/ansible-playbook does. This process never runs a playbook itself, so every child starts
# from the pristine state it had right after the imports (Display singleton, context.CLIARGS, plugin loader caches,
# constants): nothing leaks from one run into the next, because nothing is ever reset - it was never touched.
#
# Process tree: controller -> one handler per connection (forwards output, watches for abort) -> the run.
# PR_SET_PDEATHSIG on each: if the listener dies, the controller dies; if the controller dies, its handlers do;
# if a handler dies, its run gets SIGTERM. No orphan keeps running a playbook that nobody waits for.
#
# Protocol (one request per connection; frames = 1 type byte, 4-byte big-endian length, payload):
#   client -> R {"argv": [...], "cwd": "...", "env": {...}, "kill_after_s": 20}   then optionally A (abort)
#   server -> S {"pid": N} (started) | O bytes (stdout) | E bytes (stderr) | X {"exit_code": N|null, "signal": S|null}
#             or F {"error": CODE, "message": "..."} (refused: nothing was run; the client runs ansible-playbook cold)
# A client that disconnects, or sends A, gets the run SIGTERMed, then SIGKILLed after kill_after_s.
# Apache-2.0
from __future__ import absolute_import, division, print_function

import argparse
import ctypes
import errno
import glob
import json
import os
import selectors
import signal
import socket
import stat
import struct
import sys
import time

MAX_REQUEST = 8 << 20  # bytes of the R frame (argv + env); a full app list at 10,000 apps is well under it
MAX_ARGS = 4096
MAX_ENV = 1024
REQUEST_TIMEOUT_S = 5.0  # a connection must send its request within this
HEADER = struct.Struct('>cI')
# the environment ansible reads at import time (config: ansible.constants) must be the one this process imported
# with; other variables (RPROXY_RESULTS_FILE, SSH_AUTH_SOCK, PATH, ...) are read at run time and are taken per request
IMPORT_TIME_ENV_PREFIXES = ('ANSIBLE_', 'PYTHON')
IMPORT_TIME_ENV_KEYS = ('HOME', 'LANG', 'LC_ALL', 'LC_CTYPE')

PR_SET_PDEATHSIG = 1


def die_with_parent(sig=signal.SIGTERM):
    """Linux: get `sig` when the parent dies (prctl PR_SET_PDEATHSIG); best effort elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except Exception:  # pragma: no cover - not Linux
        pass


def log(event, **fields):
    fields.update(time=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), event=event, pid=os.getpid())
    try:
        sys.stderr.write(json.dumps(fields, sort_keys=True) + '\n')
        sys.stderr.flush()
    except Exception:
        pass


def send_frame(sock, kind, payload):
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload).encode('utf-8')
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)


def recv_exact(sock, n, deadline):
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout('request timeout')
        sock.settimeout(left)
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError('client closed the connection')
        buf += chunk
    return bytes(buf)


class Refused(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


def fingerprint(paths):
    """mtime/size/inode of the files whose change makes this process stale (ansible.cfg, Ansible's own code, the
    modules' code); a directory's mtime changes when a file in it is added, removed or replaced."""
    out = {}
    for p in paths:
        try:
            st = os.stat(p)
            out[p] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            out[p] = None
    return out


def module_code_paths(cwd):
    """The directories Ansible loads module code from, and their files. Ansible caches each module's payload on disk
    (`ansiballz_cache` under its local temp directory, keyed by the module's name only); the children of this process
    share that directory, so a module changed on disk would be shipped from the stale cache until a restart."""
    from ansible import constants as C
    code_dirs = [os.path.join(cwd, 'library'), os.path.join(cwd, 'module_utils')]
    code_dirs += list(C.DEFAULT_MODULE_PATH or []) + list(C.DEFAULT_MODULE_UTILS_PATH or [])
    roles_dirs = list(C.DEFAULT_ROLES_PATH or []) + [os.path.join(cwd, 'roles')]
    for roles in roles_dirs:
        for role in sorted(glob.glob(os.path.join(roles, '*'))):
            code_dirs += [os.path.join(role, 'library'), os.path.join(role, 'module_utils')]
    out, seen = [], set()
    for d in roles_dirs + code_dirs:  # a roles directory: its mtime (a role added); a code directory: its files too
        real = os.path.realpath(d)
        if real in seen or not os.path.isdir(real):
            continue
        seen.add(real)
        out.append(real)
        if d in code_dirs:
            out += sorted(os.path.join(real, f) for f in os.listdir(real))
    return out


class Controller(object):
    def __init__(self, args):
        self.socket_path = os.path.abspath(args.socket)
        self.commands = set(args.command)
        self.cwd = os.getcwd()
        self.import_env = dict((k, v) for k, v in os.environ.items() if self.import_time(k))
        import ansible.release
        self.watch = [p for p in (os.environ.get('ANSIBLE_CONFIG'), ansible.release.__file__) if p]
        self.watch += [c for c in self.commands if os.path.isabs(c)]
        self.watch += module_code_paths(self.cwd)
        self.fp = fingerprint(self.watch)
        self.handlers = set()
        self.stopping = False
        self.ppid = os.getppid()
        self.lsock = None

    @staticmethod
    def import_time(key):
        return key.startswith(IMPORT_TIME_ENV_PREFIXES) or key in IMPORT_TIME_ENV_KEYS

    # --- the request: strict, bounded, nothing run unless every check passed ---
    def validate(self, raw):
        try:
            req = json.loads(raw.decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            raise Refused('bad_request', 'the request is not UTF-8 JSON')
        if not isinstance(req, dict) or set(req) - {'argv', 'cwd', 'env', 'kill_after_s'}:
            raise Refused('bad_request', 'the request must be {argv, cwd, env, kill_after_s}')
        argv, cwd, env = req.get('argv'), req.get('cwd'), req.get('env')
        if not isinstance(argv, list) or not 1 < len(argv) <= MAX_ARGS or not all(isinstance(a, str) and '\0' not in a for a in argv):
            raise Refused('bad_request', 'argv must be a list of 2..%d strings without NUL' % MAX_ARGS)
        if argv[0] not in self.commands:
            raise Refused('bad_command', 'argv[0] must be the configured ansible-playbook (%s)' % ', '.join(sorted(self.commands)))
        if not isinstance(cwd, str) or cwd != self.cwd:
            raise Refused('env_mismatch', 'cwd %r differs from the controller\'s %r' % (cwd, self.cwd))
        if not isinstance(env, dict) or len(env) > MAX_ENV or not all(
                isinstance(k, str) and isinstance(v, str) and k and '=' not in k and '\0' not in k + v for k, v in env.items()):
            raise Refused('bad_request', 'env must map at most %d names to strings' % MAX_ENV)
        wanted = dict((k, v) for k, v in env.items() if self.import_time(k))
        if wanted != self.import_env:
            diff = sorted(k for k in set(wanted) | set(self.import_env) if wanted.get(k) != self.import_env.get(k))
            raise Refused('env_mismatch', 'the run\'s environment differs from the controller\'s in %s (restart it with the run\'s)' % ', '.join(diff))
        kill_after = req.get('kill_after_s', 20)
        if not isinstance(kill_after, (int, float)) or isinstance(kill_after, bool) or not 0 <= kill_after <= 3600:
            raise Refused('bad_request', 'kill_after_s must be a number 0..3600')
        if fingerprint(self.watch) != self.fp:
            raise Refused('stale', 'ansible.cfg, Ansible itself or a module (library/, module_utils/) changed since the controller started: restart it')
        return argv, env, float(kill_after)

    # --- the listening socket ---
    def bind(self):
        d = os.path.dirname(self.socket_path)
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise SystemExit('warm controller: %s must be a directory owned by uid %d and writable only by it' % (d, os.getuid()))
        try:
            st = os.lstat(self.socket_path)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise SystemExit('warm controller: %s exists and is not a socket: not removing it' % self.socket_path)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.socket_path)
            except OSError:
                os.unlink(self.socket_path)  # left by a controller that died
            else:
                raise SystemExit('warm controller: another controller listens on %s' % self.socket_path)
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600: no window where another user could connect
        try:
            sock.bind(self.socket_path)
        finally:
            os.umask(old)
        os.chmod(self.socket_path, 0o600)
        sock.listen(16)
        return sock

    def serve(self):
        lsock = self.lsock = self.bind()
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGINT, self.on_term)
        log('warm_ready', socket=self.socket_path, commands=sorted(self.commands))
        sys.stdout.write('ready\n')
        sys.stdout.flush()
        lsock.settimeout(1.0)
        try:
            while not self.stopping:
                self.reap()
                if os.getppid() != self.ppid:  # the listener is gone (and PDEATHSIG was not delivered)
                    break
                try:
                    conn, _ = lsock.accept()
                except socket.timeout:
                    continue
                except InterruptedError:
                    continue
                except OSError:
                    if self.stopping:
                        break
                    raise
                self.handle(conn)
        finally:
            lsock.close()
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
            self.stop_handlers()
        log('warm_stopped')

    def on_term(self, signum, frame):
        self.stopping = True

    def reap(self):
        for pid in list(self.handlers):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.handlers.discard(pid)

    def stop_handlers(self):
        for pid in self.handlers:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + 30
        while self.handlers and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)
        for pid in self.handlers:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass

    def handle(self, conn):
        uid = struct.unpack('3i', conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i')))[1]
        if uid != os.getuid():
            log('warm_refused', error='peer_uid', peer_uid=uid)
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            conn.close()
            self.handlers.add(pid)
            return
        # the handler
        code = 1
        try:
            # the listening socket is the controller's alone: a handler outliving it must not keep accepting
            self.lsock.close()
            die_with_parent()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            code = Handler(self, conn).run()
        except BaseException as e:  # never return into the accept loop of a forked copy
            log('warm_handler_error', error=repr(e))
        finally:
            os._exit(code)


class Handler(object):
    def __init__(self, controller, conn):
        self.c = controller
        self.conn = conn
        self.child = 0
        self.term = False

    def on_term(self, signum, frame):
        self.term = True

    def run(self):
        signal.signal(signal.SIGTERM, self.on_term)
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        try:
            kind, n = HEADER.unpack(recv_exact(self.conn, HEADER.size, deadline))
            if kind != b'R':
                raise Refused('bad_request', 'the first frame must be a request (R)')
            if n > MAX_REQUEST:
                raise Refused('bad_request', 'the request is larger than %d bytes' % MAX_REQUEST)
            argv, env, kill_after = self.c.validate(recv_exact(self.conn, n, deadline))
        except Refused as e:
            log('warm_refused', error=e.code, message=str(e))
            self.safe_send(b'F', {'error': e.code, 'message': str(e)})
            return 0
        except (EOFError, socket.timeout, OSError, struct.error) as e:
            log('warm_refused', error='bad_request', message=str(e))
            return 0
        self.conn.settimeout(None)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.child = os.fork()
        if self.child == 0:
            run_child(argv, env, out_w, err_w, [out_r, err_r, self.conn.fileno()])
        os.close(out_w)
        os.close(err_w)
        log('warm_run', child=self.child, argv0=argv[0], args=len(argv))
        self.safe_send(b'S', {'pid': self.child})
        return self.forward(out_r, err_r, kill_after)

    def safe_send(self, kind, payload):
        try:
            send_frame(self.conn, kind, payload)
            return True
        except OSError:
            return False


    def escalate(self, kill_at, kill_after, client):
        """An aborted run (abort frame, shutdown, or client gone) gets SIGTERM, then SIGKILL kill_after s later;
        returns the new SIGKILL deadline (None: not aborted, inf: killed)."""
        if (self.term or not client) and kill_at is None:
            self.signal_child(signal.SIGTERM)
            kill_at = time.monotonic() + kill_after
        if kill_at is not None and time.monotonic() >= kill_at:
            self.signal_child(signal.SIGKILL)
            kill_at = float('inf')
        return kill_at
    def forward(self, out_r, err_r, kill_after):
        sel = selectors.DefaultSelector()
        sel.register(out_r, selectors.EVENT_READ, b'O')
        sel.register(err_r, selectors.EVENT_READ, b'E')
        sel.register(self.conn, selectors.EVENT_READ, None)
        open_pipes = 2
        client = True
        kill_at = None
        inbuf = b''
        while open_pipes:
            kill_at = self.escalate(kill_at, kill_after, client)
            for key, _ in sel.select(timeout=0.2):
                if key.data is None:  # the client: an abort frame, or gone
                    try:
                        data = self.conn.recv(4096)
                    except OSError:
                        data = b''
                    if not data:
                        client = False
                        sel.unregister(self.conn)
                        continue
                    inbuf += data
                    if inbuf[:1] == b'A':
                        self.term = True
                    inbuf = inbuf[-4096:]
                    continue
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    os.close(key.fd)
                    open_pipes -= 1
                elif client and not self.safe_send(key.data, data):
                    client = False
                    try:
                        sel.unregister(self.conn)
                    except KeyError:
                        pass
        # output closed: wait for the run itself (it may have left a daemonised grandchild holding no pipe)
        while True:
            kill_at = self.escalate(kill_at, kill_after, client)
            pid, status = os.waitpid(self.child, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        if os.WIFSIGNALED(status):
            result = {'exit_code': None, 'signal': signal.Signals(os.WTERMSIG(status)).name}
        else:
            result = {'exit_code': os.WEXITSTATUS(status), 'signal': None}
        log('warm_run_end', child=self.child, **result)
        if client:
            self.safe_send(b'X', result)
        return 0

    def signal_child(self, sig):
        try:
            os.kill(self.child, sig)
        except OSError:
            pass


def run_child(argv, env, out_w, err_w, close):
    """The run: ansible-playbook's own entry point in a fresh copy of the imported process. Never returns."""
    code = 250
    try:
        die_with_parent()
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt -> exit 99, as cold
        for fd in close:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (devnull, out_w, err_w):
            os.close(fd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = list(argv)
        from ansible.cli.playbook import PlaybookCLI
        PlaybookCLI.cli_executor(list(argv))  # sys.exit(code), exactly like /usr/bin/ansible-playbook
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)


# What every routes run imports after the CLI starts (the strategy and connection plugins' machinery, the template
# engine, the module payload builder): 70-110 ms per run here, paid once. The plugin loader finds a module imported
# here in sys.modules; each run is a fork of this never-used process, so nothing one run does reaches another.
RUN_TIME_IMPORTS = (
    'ansible.plugins.strategy',
    'ansible.plugins.connection',
    'ansible.plugins.action',
    'ansible.executor.task_executor',
    'ansible.executor.process.worker',
    'ansible.executor.module_common',
    'ansible.template',
    'jinja2.sandbox',
    'ansible.plugins.filter.core',
    'ansible.plugins.test.core',
    'ansible.plugins.inventory.yaml',
    'ansible.plugins.callback.default',
    'ansible.plugins.connection.ssh',
    'ansible.plugins.strategy.linear',
)


def preload(names):
    """Imports what it can: a name a given Ansible version lacks only costs that run its own import."""
    import importlib
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (an import error here must never stop the controller)
            pass


def main():
    p = argparse.ArgumentParser(description='paas-rproxy warm Ansible controller (generator/src/runner/README.md)')
    p.add_argument('--socket', required=True, help='unix socket to listen on (created 0600; its directory must be ours)')
    p.add_argument('--command', action='append', required=True, help='accepted argv[0] (the configured ansible-playbook); repeatable')
    p.add_argument('--parent-pid', type=int, default=0, help='the listener\'s pid: exit at once if it is not our parent')
    args = p.parse_args()
    die_with_parent()
    # PDEATHSIG only fires for a parent that dies after prctl: one that died before it reparented us, to 1 or to a
    # subreaper (a container's init, systemd --user), and a "ppid == 1" test misses the subreaper: the controller
    # lived on with no listener. The pid the listener passes closes that window.
    if os.getppid() == 1 or (args.parent_pid and os.getppid() != args.parent_pid):
        return 1
    # the imports a cold ansible-playbook pays for on every run, paid once here
    import ansible.cli.playbook  # noqa: F401  (CLI, Display, constants from ANSIBLE_CONFIG)
    import ansible.executor.playbook_executor  # noqa: F401
    import ansible.inventory.manager  # noqa: F401
    import ansible.vars.manager  # noqa: F401
    import ansible.parsing.dataloader  # noqa: F401
    import ansible.playbook  # noqa: F401
    import ansible.executor.task_queue_manager  # noqa: F401
    import ansible.plugins.loader  # noqa: F401
    preload(RUN_TIME_IMPORTS)
    Controller(args).serve()
    return 0


if __name__ == '__main__':
    sys.exit(main())
