#!/usr/bin/python
# -*- coding: utf-8 -*-
# paas-rproxy: applies rendered per-application nginx files in ONE module execution.
# Apache-2.0
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nginx_rproxy_routes
short_description: Apply per-application nginx route files atomically (test, swap, reload, roll back)
description:
  - Used through the role-local action plugin of the same name, which renders the files on the
    controller with the role's templates (C(templates/routes/)) and calls this module once per host.
  - Byte-compares every file with what is on the host. When nothing differs it returns C(changed=false)
    and neither tests nor reloads nginx.
  - Otherwise it swaps the new files in (each written to a temporary file in the same directory and
    renamed), runs the nginx test command on the whole configuration, and on success reloads nginx
    gracefully (SIGHUP to the master; starts nginx when it is not running).
  - When the test fails, every touched file is restored to its previous content (or removed when it
    is new), the running nginx is left untouched, and the module fails with nginx's message.
  - Files of an application are C(maps/<id>.map), C(upstreams/<id>.conf), C(servers/<id>.conf),
    C(locations/<id>.conf) (included by the app's server blocks only) and C(tls/<id>/<alias>.crt|.key)
    (directory 0700, files 0600) under O(conf_dir). Any other path is refused.
options:
  conf_dir: {description: Directory holding the per-app sub-directories., type: path, required: true}
  apps: {description: App ids this call is authoritative for; their files not in O(files)/O(secret_files) are removed., type: list, elements: str, required: true}
  full: {description: Also remove files of every app not in O(apps) (stale files)., type: bool, default: false}
  files: {description: Relative path -> content., type: dict, default: {}}
  secret_files: {description: Relative path -> content (TLS keys; never logged)., type: dict, default: {}}
  test_command: {description: Command testing the whole nginx configuration., type: list, elements: str, default: [nginx, -t]}
  pid_file: {description: nginx master pid file (reload = SIGHUP)., type: path, default: /run/nginx.pid}
  start_command: {description: Command that starts nginx when it is not running., type: list, elements: str, default: [service, nginx, start]}
  reload: {description: Reload nginx after a successful change., type: bool, default: true}
'''

RETURN = r'''
written: {description: Relative paths written (at most 100 listed)., type: list, returned: always}
removed: {description: Relative paths removed (at most 100 listed)., type: list, returned: always}
reloaded: {description: Whether nginx was reloaded (or started)., type: bool, returned: always}
nginx_test: {description: Output of the nginx test command., type: str, returned: when tested}
'''

import errno
import fcntl
import os
import re
import signal
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

APP_ID_RE = re.compile(r'^[a-z0-9]+-[a-z0-9]+$')
PLAIN_RE = re.compile(r'^(maps/(?P<m>[a-z0-9]+-[a-z0-9]+)\.map|upstreams/(?P<u>[a-z0-9]+-[a-z0-9]+)\.conf'
                      r'|servers/(?P<s>[a-z0-9]+-[a-z0-9]+)\.conf|locations/(?P<l>[a-z0-9]+-[a-z0-9]+)\.conf)$')
TLS_RE = re.compile(r'^tls/(?P<t>[a-z0-9]+-[a-z0-9]+)/(?P<f>[A-Za-z0-9*][A-Za-z0-9*._-]*\.(crt|key))$')
PLAIN_SUBDIRS = ('maps', 'upstreams', 'servers', 'locations')
SUBDIRS = PLAIN_SUBDIRS + ('tls',)


def app_of(rel):
    m = PLAIN_RE.match(rel)
    if m:
        return m.group('m') or m.group('u') or m.group('s') or m.group('l')
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
    """Relative paths of managed files on the host, limited to app_ids (None = all)."""
    found = []
    for sub in PLAIN_SUBDIRS:
        d = os.path.join(conf_dir, sub)
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            rel = sub + '/' + n
            aid = app_of(rel)
            if aid is not None and (app_ids is None or aid in app_ids):
                found.append(rel)
    tdir = os.path.join(conf_dir, 'tls')
    try:
        apps = os.listdir(tdir)
    except OSError:
        apps = []
    for aid in apps:
        if not APP_ID_RE.match(aid) or (app_ids is not None and aid not in app_ids):
            continue
        try:
            names = os.listdir(os.path.join(tdir, aid))
        except OSError:
            continue
        for n in names:
            rel = 'tls/' + aid + '/' + n
            if app_of(rel) is not None:
                found.append(rel)
    return found


def write_atomic(path, data, mode):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.rproxy-', dir=d)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
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
    to_write = sorted(rel for rel, (data, mode) in desired.items() if current.get(rel) != (data, mode))
    to_remove = sorted(rel for rel in scope if rel not in desired)

    result = dict(changed=False, written=to_write[:100], removed=to_remove[:100], reloaded=False,
                  written_count=len(to_write), removed_count=len(to_remove))
    if not to_write and not to_remove:
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

    try:
        for rel in to_write:
            path = os.path.join(conf_dir, rel)
            if rel.startswith('tls/'):
                d = os.path.dirname(path)
                if not os.path.isdir(d):
                    ensure_dir(d, 0o700)
                    created_dirs.append(d)
            touched.append(rel)
            write_atomic(path, desired[rel][0], desired[rel][1])
        for rel in to_remove:
            touched.append(rel)
            os.unlink(os.path.join(conf_dir, rel))
    except Exception as e:
        rollback()
        result['changed'] = False
        module.fail_json(msg='writing nginx route files failed, previous files restored: %s' % e, **result)

    rc, out, err = module.run_command(p['test_command'])
    result['nginx_test'] = (err or out).strip()
    if rc != 0:
        rollback()
        result['changed'] = False
        module.fail_json(msg='nginx configuration test failed, previous files restored, nginx not reloaded: %s'
                         % (err or out).strip(), **result)

    # tidy TLS directories of removed apps
    for aid in set(rel.split('/')[1] for rel in to_remove if rel.startswith('tls/')):
        try:
            os.rmdir(os.path.join(conf_dir, 'tls', aid))
        except OSError:
            pass

    if p['reload']:
        pid = nginx_pid(p['pid_file'])
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
        else:
            rc, out, err = module.run_command(p['start_command'])
            if rc != 0:
                module.fail_json(msg='files applied and tested, but nginx is not running and could not be started: %s'
                                 % (err or out).strip(), **result)
        result['reloaded'] = True
    module.exit_json(**result)


if __name__ == '__main__':
    main()
