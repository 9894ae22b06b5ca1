#!/usr/bin/python
# -*- coding: utf-8 -*-
# paas-rproxy: applies rendered per-application nginx files in ONE module execution.
# Apache-2.0
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nginx_rproxy_routes
short_description: Apply per-application routes to nginx (Lua data files live, TLS servers with test and reload)
version_added: "0.1.0"
author: paas-rproxy
description:
  - Applies the routes of the selected applications of the paas-rproxy routing state to nginx on the host.
  - >-
    Runs as a pair. The role-local action plugin of the same name (action_plugins/nginx_rproxy_routes.py) runs on
    the controller: it reads the routing state from O(state_dir) (never from the inventory), checks every value,
    derives each app's routing data file, renders the TLS servers of apps with certificates with the role's
    template templates/routes/app.tls-servers.conf.j2 and reads their TLS material; then it calls this module ONCE
    per host with the resulting files. The options marked "set by the action plugin" are not for tasks.
  - Byte-compares every file with what is on the host. When nothing differs it returns C(changed=false) and
    touches nothing, so a second run changes nothing.
  - Files of an application under O(conf_dir) are C(apps/<id>.json) (its routing data, read by the Lua data plane),
    C(tls-servers/<id>.conf) (its :443 servers, only with TLS aliases) and C(tls/<id>/<alias>.crt|.key) (directory
    0700, files 0600). Any other path is refused.
  - Every file is swapped in atomically (temporary file + rename), the previous bytes kept, and the directories are
    fsynced once after the renames. A few files get an fsync each before their rename; many (32 or more, a new
    proxy's whole state) are all written as temporary files first, made durable with ONE syncfs of the filesystem,
    then renamed. A crash leaves every file whole, never truncated; 10,000 files take 0.6 s instead of 2.9 s.
    When only data files
    changed (at most O(bulk_sync_threshold) apps) and nginx runs, the change is POSTed to the Lua apply endpoint
    (O(apply_socket), root only), which checks every entry and applies all or nothing, without a reload. Otherwise
    (TLS servers or certificates changed, a bulk change, or a running nginx without the endpoint) the whole
    configuration is tested (O(test_command)) and nginx reloaded gracefully. nginx not running is started (it loads
    every data file at start).
  - When the POST, the test or the start fails, every touched file gets its previous bytes back (or is removed when
    it was new) and the module fails with the reason; the running nginx keeps what it had.
  - A full run (no O(sync_apps)) also removes the files of apps not in the state and, once the base configuration
    no longer includes them, the directories of the older per-app layout (maps/, upstreams/, servers/, locations/).
options:
  sync_apps:
    description:
      - App ids to apply (a list, or a string of ids separated by commas or spaces). An id absent from the state is
        a deleted app, whose files are removed.
      - Omitted or null, every app of the state is applied and stale files are removed (a full run).
    type: raw
  state_dir:
    description: Absolute path of the paas-rproxy state directory on the controller (routes/index.json, routes/apps/).
    type: path
    required: true
  settings:
    description:
      - What the TLS server template prints besides the app's own data, checked by the action plugin.
      - Keys C(https_port) (int), C(listen_ipv6) (bool), C(http2) (bool).
    type: dict
    default: {}
  conf_dir:
    description: Directory on the host holding the per-app sub-directories.
    type: path
    default: /etc/nginx/rproxy
  test_command:
    description: Command testing the whole nginx configuration.
    type: list
    elements: str
    default: [nginx, -t]
  pid_file:
    description: nginx master pid file (reload = SIGHUP).
    type: path
    default: /run/nginx.pid
  start_command:
    description: Command that starts nginx when it is not running.
    type: list
    elements: str
    default: [service, nginx, start]
  apply_socket:
    description: Unix socket of the Lua apply endpoint (its directory is made 0700 root).
    type: path
    default: /run/nginx-rproxy/apply.sock
  bulk_sync_threshold:
    description: More changed apps than this go through test and reload instead of one POST.
    type: int
    default: 500
  reload:
    description: Reload (or start) nginx after a successful change. Set by the action plugin.
    type: bool
    default: true
  apps:
    description: App ids this call is authoritative for; their files not in O(files)/O(secret_files) are removed. Set by the action plugin.
    type: list
    elements: str
  full:
    description: Also remove the files of every app not in O(apps) (stale files) and the older layout. Set by the action plugin.
    type: bool
    default: false
  files:
    description: Relative path -> content. Set by the action plugin.
    type: dict
    default: {}
  secret_files:
    description: Relative path -> content (TLS keys; never logged, never shown in a diff). Set by the action plugin.
    type: dict
    default: {}
attributes:
  action:
    description: The controller part is the action plugin of the same name.
    support: full
  check_mode:
    description: Reports what would be written and removed (and the diff), touches nothing.
    support: full
  diff_mode:
    description: Returns a diff per changed file (at most 20 files); key material is never shown.
    support: full
  platform:
    platforms: posix
notes:
  - Needs nginx with the Lua module (libnginx-mod-http-lua) and the base configuration of the role (tag nginx_rproxy).
  - The action plugin renders with plain Jinja2 (sandboxed, strict undefined), not Ansible's Templar; the routing
    state's strings are never templated.
  - The role's README (roles/nginx_rproxy/README.md) describes the data plane, the apply endpoint and the variables.
'''

EXAMPLES = r'''
# A targeted run, as the listener's runner makes it (ansible-playbook ... --tags nginx_rproxy_routes
# -e '{"nginx_rproxy_sync_apps": ["blog-x"]}'): only these apps' files are compared and written.
- name: Apply the routes of the changed applications
  nginx_rproxy_routes:
    sync_apps: "{{ nginx_rproxy_sync_apps }}"
    state_dir: /var/lib/paas-rproxy
    conf_dir: /etc/nginx/rproxy
    settings:
      https_port: 443
      listen_ipv6: true
      http2: true

# A full run (every app; stale files removed), shown as a diff without touching anything:
#   ansible-playbook -i inventory ansible/site.yml --tags nginx_rproxy_routes --check --diff
- name: Apply every application's routes
  nginx_rproxy_routes:
    state_dir: /var/lib/paas-rproxy
    conf_dir: /etc/nginx/rproxy
    test_command: [nginx, -t, -q]
    pid_file: /run/nginx.pid
    start_command: [service, nginx, start]
    settings: {https_port: 443, listen_ipv6: false, http2: true}
  register: routes

- name: Say how the change went live
  ansible.builtin.debug:
    msg: "{{ routes.written_count }} written, {{ routes.removed_count }} removed, applied: {{ routes.applied }}"
'''

RETURN = r'''
written:
  description: Relative paths (under O(conf_dir)) written or, in check mode, to be written; at most 100 listed.
  type: list
  elements: str
  returned: always
  sample: [apps/blog-x.json, tls-servers/blog-x.conf]
removed:
  description: Relative paths removed (or to be removed); at most 100 listed.
  type: list
  elements: str
  returned: always
  sample: [apps/old-x.json]
written_count:
  description: How many files were (or would be) written.
  type: int
  returned: always
  sample: 2
removed_count:
  description: How many files were (or would be) removed.
  type: int
  returned: always
  sample: 0
legacy_removed:
  description: Directories of the older per-app layout removed by a full run.
  type: list
  elements: str
  returned: always
  sample: []
applied:
  description: How the change went live, C(none) (nothing changed, or check mode), C(live) (one POST to the apply
    endpoint, no reload), C(reload) (test, then SIGHUP) or C(start) (nginx was not running).
  type: str
  returned: always
  sample: live
reloaded:
  description: Whether nginx was reloaded or started.
  type: bool
  returned: always
  sample: false
apply:
  description: The apply endpoint's answer to the POST.
  type: str
  returned: when applied is C(live)
  sample: '{"applied":1}'
nginx_test:
  description: Output of the nginx test command.
  type: str
  returned: when the configuration was tested
  sample: "nginx: configuration file /etc/nginx/nginx.conf test is successful"
apps_selected:
  description: How many apps the run covered (set by the action plugin).
  type: int
  returned: always
  sample: 1
full_run:
  description: Whether this was a full run (no sync_apps; set by the action plugin).
  type: bool
  returned: always
  sample: false
diff:
  description: With C(--diff), one entry per changed file (at most 20) with before/after text; key files show a
    placeholder, never key material.
  type: list
  elements: dict
  returned: changed and diff mode
'''

import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import stat
import tempfile

try:
    import http.client as httplib
except ImportError:  # pragma: no cover (Python 2 hosts are not supported by the data plane)
    httplib = None

from ansible.module_utils.basic import AnsibleModule

APP_ID_RE = re.compile(r'^[a-z0-9]+-[a-z0-9]+\Z')
PLAIN_RE = re.compile(r'^(apps/(?P<d>[a-z0-9]+-[a-z0-9]+)\.json|tls-servers/(?P<s>[a-z0-9]+-[a-z0-9]+)\.conf)\Z')
TLS_RE = re.compile(r'^tls/(?P<t>[a-z0-9]+-[a-z0-9]+)/(?P<f>[A-Za-z0-9*][A-Za-z0-9*._-]*\.(crt|key))\Z')
PLAIN_SUBDIRS = ('apps', 'tls-servers')
SUBDIRS = PLAIN_SUBDIRS + ('tls',)
# the per-app layout of paas-rproxy before the Lua data plane: removed by a full run once nothing includes it
LEGACY_SUBDIRS = ('maps', 'upstreams', 'servers', 'locations')
APPLY_TIMEOUT = 10.0
# From this many files on, one filesystem sync replaces an fsync per file (write_files): 10,000 fsyncs cost 2.9 s on
# the lab's proxies, one sync 0.1 s. Below it (the listener's targeted runs: one or a few apps) an fsync per file
# costs less than flushing whatever else the filesystem has dirty.
BATCH_SYNC_MIN = 32


def app_of(rel):
    m = PLAIN_RE.match(rel)
    if m:
        return m.group('d') or m.group('s')
    m = TLS_RE.match(rel)
    if m and '..' not in m.group('f'):
        return m.group('t')
    return None


def mode_of(rel):
    return 0o600 if rel.startswith('tls/') else 0o644


def read_current(path):
    try:
        st = os.lstat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    with open(path, 'rb') as f:
        return f.read(), stat.S_IMODE(st.st_mode)


def existing_files(conf_dir, app_ids=None):
    """Relative paths of managed files on the host, limited to app_ids (None = all). A targeted run looks only at
    its apps' own paths (apps/<id>.json, tls-servers/<id>.conf, tls/<id>/): listing whole directories would cost
    every run time linear in the number of apps on the proxy (10,000 names for a one-app change)."""
    if app_ids is not None:
        return _existing_files_of(conf_dir, app_ids)
    found = []
    for sub in PLAIN_SUBDIRS:
        d = os.path.join(conf_dir, sub)
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            rel = sub + '/' + n
            if app_of(rel) is not None:
                found.append(rel)
    tdir = os.path.join(conf_dir, 'tls')
    try:
        apps = os.listdir(tdir)
    except OSError:
        apps = []
    for aid in apps:
        if APP_ID_RE.match(aid):
            found.extend(_tls_files_of(tdir, aid))
    return found


def _existing_files_of(conf_dir, app_ids):
    found = []
    for aid in app_ids:
        for rel in ('apps/%s.json' % aid, 'tls-servers/%s.conf' % aid):
            if os.path.lexists(os.path.join(conf_dir, rel)):
                found.append(rel)
        found.extend(_tls_files_of(os.path.join(conf_dir, 'tls'), aid))
    return found


def _tls_files_of(tdir, aid):
    try:
        names = os.listdir(os.path.join(tdir, aid))
    except OSError:
        return []
    return [rel for rel in ('tls/' + aid + '/' + n for n in names) if app_of(rel) is not None]


def legacy_dirs(conf_dir):
    """The older layout's directories on the host, unless the live base configuration still includes them."""
    found = [os.path.join(conf_dir, d) for d in LEGACY_SUBDIRS if os.path.isdir(os.path.join(conf_dir, d))]
    if not found:
        return []
    try:
        with open(os.path.join(conf_dir, 'rproxy.conf'), 'rb') as f:
            base = f.read()
    except (IOError, OSError):
        return []
    if b'/maps/' in base or b'/upstreams/' in base or b'/servers/' in base:
        return []  # the base configuration of the older layout: site.yml (tag nginx_rproxy) replaces it first
    return found
def write_temp(path, data, mode, sync=True):
    """A temporary file beside `path` holding `data` (fsynced when `sync`); returns its path."""
    fd, tmp = tempfile.mkstemp(prefix='.rproxy-', dir=os.path.dirname(path))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
    except BaseException:
        unlink_quiet(tmp)
        raise
    return tmp


def unlink_quiet(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write_atomic(path, data, mode):
    tmp = write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quiet(tmp)
        raise


def _syncfs():
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), 'syncfs', None)
    except OSError:
        return None


def sync_filesystem(path):
    """Makes every file written so far on the filesystem of directory `path` durable: syncfs(2) on it (Linux: it
    waits for the writeback and reports its errors), else sync(2). Raises OSError."""
    fd = os.open(path, os.O_RDONLY)
    try:
        syncfs = _syncfs()
        if syncfs is not None:
            if syncfs(fd) == 0:
                return
            err = ctypes.get_errno()
            if err != errno.ENOSYS:
                raise OSError(err, 'syncfs %s: %s' % (path, os.strerror(err)))
        os.sync()
    finally:
        os.close(fd)


def fsync_dir(path):
    """Makes the renames and removals in directory `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_files(items, touched):
    """Swaps in every (rel, path, data, mode) of `items`, each atomically: a crash leaves every file whole, old or new,
    never truncated. Few files: temporary file, fsync, rename, one by one. Many (BATCH_SYNC_MIN): every temporary
    file written first, then ONE filesystem sync makes them all durable, then the renames. `touched` gets each rel
    before its rename (the caller's rollback); temporary files not renamed are removed on failure."""
    if len(items) < BATCH_SYNC_MIN:
        for rel, path, data, mode in items:
            touched.append(rel)
            write_atomic(path, data, mode)
        return
    temps = []
    renamed = 0
    try:
        for rel, path, data, mode in items:
            temps.append((rel, path, write_temp(path, data, mode, sync=False)))
        by_fs = {}
        for d in set(os.path.dirname(path) for _rel, path, _tmp in temps):
            by_fs.setdefault(os.stat(d).st_dev, d)
        for d in by_fs.values():
            sync_filesystem(d)
        for rel, path, tmp in temps:
            touched.append(rel)
            os.replace(tmp, path)
            renamed += 1
    except BaseException:
        for _rel, _path, tmp in temps[renamed:]:
            unlink_quiet(tmp)
        raise


def ensure_dir(path, mode):
    try:
        os.mkdir(path, mode)
    except OSError as e:
        if e.errno != errno.EEXIST:
            raise
    if stat.S_IMODE(os.stat(path).st_mode) != mode:
        os.chmod(path, mode)


def nginx_pid(pid_file):
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


class UnixHTTPConnection(httplib.HTTPConnection if httplib else object):
    """HTTP over the apply endpoint's unix socket (root only: its directory is 0700 root)."""

    def __init__(self, path, timeout):
        httplib.HTTPConnection.__init__(self, 'localhost', timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except Exception:
            s.close()
            raise
        self.sock = s


class NoEndpoint(Exception):
    """The running nginx has no apply endpoint (a base configuration before the Lua data plane)."""


def post_apply(path, payload, timeout=APPLY_TIMEOUT):
    """POSTs {"set": ..., "delete": ...}; returns the decoded reply. NoEndpoint when nothing listens; other errors
    raise with a readable message."""
    conn = UnixHTTPConnection(path, timeout)
    try:
        try:
            conn.connect()
        except (IOError, OSError) as e:
            if getattr(e, 'errno', None) in (errno.ENOENT, errno.ECONNREFUSED):
                raise NoEndpoint(str(e))
            raise
        body = json.dumps(payload, sort_keys=True, separators=(',', ':')).encode('utf-8')
        conn.request('POST', '/apply', body=body, headers={'Content-Type': 'application/json'})
        resp = conn.getresponse()
        text = resp.read(65536).decode('utf-8', 'replace')
        if resp.status != 200:
            raise RuntimeError('the apply endpoint answered %d: %s' % (resp.status, text.strip()[:500]))
        return text.strip()
    finally:
        conn.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            conf_dir=dict(type='path', required=True),
            apps=dict(type='list', elements='str', required=True),
            full=dict(type='bool', default=False),
            files=dict(type='dict', default={}),
            secret_files=dict(type='dict', default={}, no_log=True),
            test_command=dict(type='list', elements='str', default=['nginx', '-t']),
            pid_file=dict(type='path', default='/run/nginx.pid'),
            start_command=dict(type='list', elements='str', default=['service', 'nginx', 'start']),
            apply_socket=dict(type='path', default='/run/nginx-rproxy/apply.sock'),
            bulk_sync_threshold=dict(type='int', default=500),
            reload=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    conf_dir = p['conf_dir']
    apps = set(p['apps'])
    for aid in apps:
        if not APP_ID_RE.match(aid):
            module.fail_json(msg='invalid app id %r' % aid)

    desired = {}
    for src in (p['files'], p['secret_files']):
        for rel, content in src.items():
            aid = app_of(rel)
            if aid is None or aid not in apps:
                module.fail_json(msg='refusing to write %r: not a file of the selected apps' % rel)
            desired[rel] = (content.encode('utf-8'), mode_of(rel))
    # every data file must be what the Lua data plane reads: one JSON object naming its app
    for rel, (data, _mode) in desired.items():
        if rel.startswith('apps/'):
            try:
                doc = json.loads(data.decode('utf-8'))
            except ValueError as e:
                module.fail_json(msg='refusing to write %r: not JSON (%s)' % (rel, e))
            if not isinstance(doc, dict) or doc.get('id') != app_of(rel):
                module.fail_json(msg='refusing to write %r: not the data of app %s' % (rel, app_of(rel)))

    lock_fd = None
    if not module.check_mode:
        if not os.path.isdir(conf_dir):
            module.fail_json(msg='%s does not exist (run the full nginx_rproxy role first)' % conf_dir)
        for sub in SUBDIRS:
            ensure_dir(os.path.join(conf_dir, sub), 0o700 if sub == 'tls' else 0o755)
        lock_fd = os.open(os.path.join(conf_dir, '.rproxy-routes.lock'), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)

    scope = existing_files(conf_dir, None if p['full'] else apps)
    current = {}
    for rel in set(scope) | set(desired):
        current[rel] = read_current(os.path.join(conf_dir, rel))
    # certificates and keys first: a crash between renames must not leave a TLS server naming a file not there yet
    to_write = sorted((rel for rel, (data, mode) in desired.items() if current.get(rel) != (data, mode)),
                      key=lambda rel: (not rel.startswith('tls/'), rel))
    to_remove = sorted(rel for rel in scope if rel not in desired)
    legacy = legacy_dirs(conf_dir) if p['full'] else []

    result = dict(changed=False, written=to_write[:100], removed=to_remove[:100], reloaded=False, applied='none',
                  written_count=len(to_write), removed_count=len(to_remove),
                  legacy_removed=[os.path.basename(d) for d in legacy])
    if not to_write and not to_remove and not legacy:
        module.exit_json(**result)
    result['changed'] = True
    if module._diff:
        # what --diff shows: every changed file (at most 20), key material never
        diffs = []
        for rel in (to_write + to_remove)[:20]:
            secret = rel.endswith('.key')
            before = current.get(rel)
            after = desired.get(rel)
            diffs.append(dict(
                before_header=os.path.join(conf_dir, rel), after_header=os.path.join(conf_dir, rel),
                before='(key material not shown)\n' if secret and before else (before[0].decode('utf-8', 'replace') if before else ''),
                after='(key material not shown, changed)\n' if secret and after else (after[0].decode('utf-8', 'replace') if after else '')))
        result['diff'] = diffs
    if module.check_mode:
        module.exit_json(**result)

    # swap in, keeping the previous bytes to roll back
    touched = []
    created_dirs = []

    def rollback():
        for rel in reversed(touched):
            path = os.path.join(conf_dir, rel)
            prev = current.get(rel)
            try:
                if prev is None:
                    os.unlink(path)
                else:
                    write_atomic(path, prev[0], prev[1])
            except OSError:
                pass
        for d in created_dirs:
            try:
                os.rmdir(d)
            except OSError:
                pass
        # the restore durable like the writes were: a crash now must not bring back what nginx -t refused
        for d in sorted(set(os.path.dirname(os.path.join(conf_dir, rel)) for rel in touched)
                        | set(os.path.dirname(d) for d in created_dirs)):
            try:
                fsync_dir(d)
            except OSError:
                pass

    def fail(msg):
        rollback()
        result['changed'] = False
        module.fail_json(msg=msg, **result)

    try:
        items = []
        for rel in to_write:
            path = os.path.join(conf_dir, rel)
            if rel.startswith('tls/'):
                d = os.path.dirname(path)
                if not os.path.isdir(d):
                    ensure_dir(d, 0o700)
                    created_dirs.append(d)
            items.append((rel, path, desired[rel][0], desired[rel][1]))
        write_files(items, touched)
        for rel in to_remove:
            touched.append(rel)
            os.unlink(os.path.join(conf_dir, rel))
        # the renames and removals themselves durable: each directory once (created ones and conf_dir too)
        for d in sorted(set(os.path.dirname(os.path.join(conf_dir, rel)) for rel in to_write + to_remove)
                        | set(os.path.dirname(d) for d in created_dirs)):
            if os.path.isdir(d):
                fsync_dir(d)
    except Exception as e:
        fail('writing nginx route files failed, previous files restored: %s' % e)

    changed_data = sorted(set(app_of(rel) for rel in to_write + to_remove if rel.startswith('apps/')))
    structural = any(not rel.startswith('apps/') for rel in to_write + to_remove)
    bulk = len(changed_data) > p['bulk_sync_threshold']
    # the socket's directory: root only (nginx's master, root, binds the socket at start and reload)
    sock_dir = os.path.dirname(p['apply_socket'])
    try:
        if not os.path.isdir(sock_dir):
            os.makedirs(sock_dir, 0o700)
        os.chmod(sock_dir, 0o700)
    except OSError as e:
        fail('cannot create the apply socket directory %s, previous files restored: %s' % (sock_dir, e))

    def test_config():
        rc, out, err = module.run_command(p['test_command'])
        result['nginx_test'] = (err or out).strip()
        if rc != 0:
            fail('nginx configuration test failed, previous files restored, nginx not reloaded: %s' % (err or out).strip())

    pid = nginx_pid(p['pid_file'])
    if not p['reload']:
        if structural:
            test_config()
    elif pid is None:
        if structural:
            test_config()
        rc, out, err = module.run_command(p['start_command'])
        if rc != 0:
            fail('nginx is not running and could not be started, previous files restored: %s' % (err or out).strip())
        result['applied'] = 'start'
        result['reloaded'] = True
    else:
        live = not structural and not bulk and changed_data
        if live:
            payload = {'set': {}, 'delete': []}
            for aid in changed_data:
                rel = 'apps/%s.json' % aid
                if rel in desired:
                    payload['set'][aid] = json.loads(desired[rel][0].decode('utf-8'))
                else:
                    payload['delete'].append(aid)
            try:
                result['apply'] = post_apply(p['apply_socket'], payload)
                result['applied'] = 'live'
            except NoEndpoint:
                live = False  # the running nginx predates the data plane: test and reload load the files
            except Exception as e:
                fail('the live apply of %d app(s) through %s failed, previous files restored, running nginx unchanged: %s'
                     % (len(changed_data), p['apply_socket'], e))
        if not live and (structural or changed_data):
            test_config()
            os.kill(pid, signal.SIGHUP)
            result['applied'] = 'reload'
            result['reloaded'] = True

    # tidy TLS directories of removed apps, and the older layout (nothing includes it any more)
    for aid in set(rel.split('/')[1] for rel in to_remove if rel.startswith('tls/')):
        try:
            os.rmdir(os.path.join(conf_dir, 'tls', aid))
        except OSError:
            pass
    for d in legacy:
        shutil.rmtree(d, ignore_errors=True)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
