# -*- coding: utf-8 -*-
# paas-rproxy: controller side of nginx_rproxy_routes.
# Reads the routing state from the controller's state directory (the ONE place Ansible reads it:
# <state_dir>/routes/index.json + apps/<id>.json, schema in generator/src/vars/README.md), validates every value of the
# selected applications, derives each app's routing data file (apps/<id>.json: only the generator's `route` block,
# deterministic bytes) and, for apps with TLS aliases, renders their :443 servers with the role's template
# (templates/routes/app.tls-servers.conf.j2, which only prints), reads their TLS material, and calls the module of
# the same name ONCE per host.
# Apache-2.0
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.module_utils.six import string_types
from ansible.parsing.ajson import AnsibleJSONDecoder
from ansible.plugins.action import ActionBase
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

APP_ID_RE = re.compile(r'^[a-z0-9]+-[a-z0-9]+\Z')
HOST_RE = re.compile(r'^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?\Z')
FQDN_RE = re.compile(r'^[a-z0-9]+-[a-z0-9]+(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+\Z')
BACKEND_RE = re.compile(r'^(\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}\Z')
# The route block's nginx strings, as the generator derives them (generator/src/state/route.ts). The path
# character set is the core's intake rule: no quote, backslash, '$', '{', '}', ';', '#' or space can occur,
# so every value below prints safely inside an nginx double-quoted string or as a bare word.
PATH_CH = r'[A-Za-z0-9._~!&()*+,=:@%/-]'
LOC_PATH_RE = re.compile(r'^/' + PATH_CH + r'{0,1023}\Z')
# ^<path with the PCRE metacharacters of the set escaped>/*(.*)$  (Python re.escape's set: . ( ) * + ~ & -)
REWRITE_REGEX_RE = re.compile(r'^\^/(?:[A-Za-z0-9_!,=:@%/]|\\[.()*+~&-]){0,1023}/\*\(\.\*\)\$\Z')
# <backend path without trailing slashes>/$1  ('$' only in the final capture reference)
REWRITE_TO_RE = re.compile(r'^(?:/' + PATH_CH + r'{0,1023})?/\$1\Z')
REL_FILE_RE = re.compile(r'^[A-Za-z0-9_.][A-Za-z0-9_./*-]*\Z')
CONF_DIR_RE = re.compile(r'^/[A-Za-z0-9_./-]*\Z')
NGINX_TIME_RE = re.compile(r'^\d{1,9}(ms|s|m|h|d|w|M|y)?\Z')

TEMPLATES = ('app.tls-servers.conf.j2',)
ROUTES_DIR = 'routes'
STATE_FILE = 'rproxy_routes.json'
STATE_SCHEMA = 2


class RouteError(Exception):
    pass


def _str(v):
    return isinstance(v, string_types)


def _bool(r, k, aid):
    if not isinstance(r.get(k), bool):
        raise RouteError('app %s: route.%s must be true or false, got %r' % (aid, k, r.get(k)))
    return r[k]


def check_app(aid, app):
    """Second line of defence: every value a template prints for this app must match a strict pattern
    (the generator already validated and derived it). Raises RouteError naming the app and field."""
    if not _str(aid) or not APP_ID_RE.match(aid):
        raise RouteError('app id %r is not <name>-<namespace>' % (aid,))
    if not isinstance(app, dict) or not isinstance(app.get('route'), dict):
        raise RouteError('app %s: no "route" block (regenerate the vars with paas-rproxy)' % aid)
    fq = app.get('fqdn')
    if not _str(fq) or not FQDN_RE.match(fq) or len(fq) > 253 or not fq.startswith(aid + '.'):
        raise RouteError('app %s: bad fqdn %r (must be <app id>.<cloud domain>)' % (aid, fq))
    r = app['route']
    if 'map_value' not in r or 'root_location' not in r or \
            any(isinstance(loc, dict) and 'path' not in loc for loc in r.get('locations') or []):
        raise RouteError('app %s: the route block was written by an older paas-rproxy (no map_value, root_location '
                         'or locations[].path): let the current generator rewrite the routing state' % aid)
    websocket = _bool(r, 'websocket', aid)
    _bool(r, 'dedicated_server', aid)
    root_location = _bool(r, 'root_location', aid)
    up = r.get('upstream')
    backends = r.get('backends')
    if not isinstance(backends, list):
        raise RouteError('app %s: route.backends must be a list' % aid)
    for b in backends:
        if not _str(b) or not BACKEND_RE.match(b) or not 1 <= int(b.rsplit(':', 1)[1]) <= 65535:
            raise RouteError('app %s: bad backend %r' % (aid, b))
    # the upstream name is the app id, with the "ws." prefix exactly when the app is a websocket app
    expected_up = (('ws.' if websocket else '') + aid) if backends else None
    if up != expected_up or (up is not None and not _str(up)):
        raise RouteError('app %s: route.upstream %r does not match its backends/websocket (expected %r)' % (aid, up, expected_up))
    mv = r.get('map_value')
    if mv != (up if up is not None else '@503') or not _str(mv):
        raise RouteError('app %s: bad route.map_value %r (the upstream, or "@503" without backend)' % (aid, mv))
    names = r.get('server_names')
    if not isinstance(names, list) or not names:
        raise RouteError('app %s: route.server_names is empty' % aid)
    if names[0] != fq:
        raise RouteError('app %s: route.server_names must start with the fqdn' % aid)
    for n in names:
        if not _str(n) or not HOST_RE.match(n) or len(n) > 253:
            raise RouteError('app %s: bad server name %r' % (aid, n))
    locs = r.get('locations')
    if not isinstance(locs, list):
        raise RouteError('app %s: route.locations must be a list' % aid)
    seen = set()
    for loc in locs:
        if not isinstance(loc, dict):
            raise RouteError('app %s: a route.locations entry is not a mapping' % aid)
        for k, rx in (('path', LOC_PATH_RE), ('backend', LOC_PATH_RE), ('rewrite_regex', REWRITE_REGEX_RE),
                      ('rewrite_to', REWRITE_TO_RE)):
            v = loc.get(k)
            if not _str(v) or not rx.match(v):
                raise RouteError('app %s: bad location %s %r' % (aid, k, v))
        if loc['path'] in seen:
            raise RouteError('app %s: two locations for path %r (nginx -t would fail)' % (aid, loc['path']))
        seen.add(loc['path'])
    if root_location == ('/' in seen):
        raise RouteError('app %s: route.root_location must be true exactly when no location has path "/"' % aid)
    aliases = set(a for a in (app.get('aliases') or []) if _str(a))
    tls = app.get('tls')
    if tls is None:
        tls = []
    if not isinstance(tls, list):
        raise RouteError('app %s: tls must be a list' % aid)
    for t in tls:
        if not isinstance(t, dict) or not _str(t.get('alias')) or not HOST_RE.match(t['alias']) or len(t['alias']) > 253 \
                or t['alias'] not in aliases or t['alias'].startswith('*'):
            raise RouteError('app %s: bad tls entry (alias must be one of the app\'s aliases)' % aid)
        for k in ('cert_file', 'key_file'):
            v = t.get(k)
            if not _str(v) or not REL_FILE_RE.match(v) or '..' in v.split('/'):
                raise RouteError('app %s: tls %s must be a relative path inside the state directory, got %r' % (aid, k, v))


def check_settings(settings):
    """The role settings the TLS server template prints, normalized to plain values (bools, ints) and checked, so the
    template needs no filter. Raises RouteError."""
    s = dict(settings)
    out = {}
    if not _str(s.get('conf_dir')) or not CONF_DIR_RE.match(s['conf_dir']):
        raise RouteError('conf_dir must be an absolute path of [A-Za-z0-9_./-], got %r' % (s.get('conf_dir'),))
    out['conf_dir'] = s['conf_dir'].rstrip('/') or '/'
    for k, lo in (('https_port', 1),):
        try:
            v = int(to_text(s.get(k)), 10)
        except (TypeError, ValueError):
            raise RouteError('setting %s must be an integer, got %r' % (k, s.get(k)))
        if v < lo or v > 65535:
            raise RouteError('setting %s out of range: %r' % (k, v))
        out[k] = v
    for k in ('listen_ipv6', 'http2'):
        try:
            out[k] = boolean(s.get(k, False), strict=True)
        except TypeError:
            raise RouteError('setting %s must be a boolean, got %r' % (k, s.get(k)))
    return out


def load_state(state_dir, sync_apps=None):
    """(apps, routes_dir): the routing state under <state_dir>/routes (schema 3, generator/src/vars/README.md):
    index.json names the apps (it is the commit point: written after the app files), apps/<id>.json holds each
    app. A full run (sync_apps None) loads every app; a targeted run (a list of ids, or a comma/space separated
    string) reads only the index and its apps' files: an id the index does not name is a deleted app (left out,
    so the module removes its files). Event strings stay unsafe (Ansible's JSON decoder turns
    {"__ansible_unsafe": ...} into AnsibleUnsafeText): they are never templated. No index = the single file of
    schema 2 (routes/rproxy_routes.json, not migrated yet) if there is one, else no apps (a fresh installation).
    Raises RouteError."""
    routes_dir = os.path.join(state_dir, ROUTES_DIR)
    index_path = os.path.join(routes_dir, 'index.json')

    def read_json(path, cls=None):
        with open(path, 'rb') as f:
            return json.loads(to_text(f.read()), cls=cls)

    try:
        index = read_json(index_path)
    except (IOError, OSError) as e:
        if getattr(e, 'errno', None) != 2:
            raise RouteError('cannot read the routing state %s: %s' % (index_path, e))
        index = None
    except ValueError as e:
        raise RouteError('the routing state %s is not valid JSON: %s' % (index_path, e))

    if index is None:
        path = os.path.join(routes_dir, STATE_FILE)
        try:
            doc = read_json(path, AnsibleJSONDecoder)
        except (IOError, OSError) as e:
            if getattr(e, 'errno', None) == 2:
                return {}, routes_dir
            raise RouteError('cannot read the routing state %s: %s' % (path, e))
        except ValueError as e:
            raise RouteError('the routing state %s is not valid JSON: %s' % (path, e))
        if not isinstance(doc, dict) or doc.get('nginx_rproxy_routes_schema') != STATE_SCHEMA:
            raise RouteError('the routing state %s is not schema %d (written by another paas-rproxy version?)' % (path, STATE_SCHEMA))
        apps = doc.get('nginx_rproxy_apps')
        if not isinstance(apps, dict):
            raise RouteError('%s: nginx_rproxy_apps must be a mapping of app id -> app' % path)
        return apps, routes_dir

    if not isinstance(index, dict) or index.get('nginx_rproxy_routes_schema') != 3:
        raise RouteError('the routing state %s is not schema 3 (written by another paas-rproxy version?)' % index_path)
    names = index.get('app_digests')
    if not isinstance(names, dict):
        raise RouteError('%s: app_digests must be a mapping of app id -> digest' % index_path)
    if sync_apps is None or not isinstance(sync_apps, (list, tuple) + string_types):
        wanted = sorted(names)
    else:
        if isinstance(sync_apps, string_types):
            sync_apps = re.split(r'[\s,]+', sync_apps)
        # an id that is not one (run() refuses it) or that the index does not name (deleted) reads no file
        wanted = sorted(set(to_text(a) for a in sync_apps if _str(a) and a in names))
    def still_named(aid):
        """Does the index as it is now still name `aid`? Read again for each missing file (each one is a deletion
        the listener committed: linear in what changed, and a second deletion later in a long run is seen too)."""
        try:
            doc = read_json(index_path)
        except (IOError, OSError, ValueError):
            return True
        return not isinstance(doc, dict) or not isinstance(doc.get('app_digests'), dict) or aid in doc['app_digests']

    apps = {}
    for aid in wanted:
        if not _str(aid) or not APP_ID_RE.match(aid):
            raise RouteError('%s names %r, which is not an app id' % (index_path, aid))
        path = os.path.join(routes_dir, 'apps', aid + '.json')
        try:
            apps[aid] = read_json(path, AnsibleJSONDecoder)
        except (IOError, OSError) as e:
            # a run does not hold the state lock: the listener may have committed an index without this app (deleted)
            # and unlinked its file since we read the index. Deleted now = left out, as if the run had started later.
            if getattr(e, 'errno', None) == 2 and not still_named(aid):
                continue
            raise RouteError('%s names app %s but %s cannot be read (%s): restore it, or let paas-rproxy rewrite the '
                             'state (remove the app from the index and replay its events)' % (index_path, aid, path, e))
        except ValueError as e:
            raise RouteError('the routing state %s is not valid JSON: %s' % (path, e))
    return apps, routes_dir


def checked_app_tls(state_dir, routes_dir, aid, app, tries=3):
    """(app, certificates, keys): check_app, then the app's TLS files read (relative path under conf_dir -> text).
    A run does not hold the state lock: a TLS file missing may have been removed by the listener since the app file
    was read (remove_ssl, remove_alias, delete: any publisher can send them), so the app is read again and checked
    again (None: deleted meanwhile). Raises RouteError."""
    for attempt in range(tries):
        check_app(aid, app)
        crt, key, gone = {}, {}, False
        for t in app.get('tls') or []:
            alias = to_text(t['alias'])
            for k, ext, dest in (('cert_file', 'crt', crt), ('key_file', 'key', key)):
                src = os.path.join(routes_dir, to_text(t[k]))
                try:
                    with open(src, 'rb') as f:
                        dest['tls/%s/%s.%s' % (aid, alias, ext)] = to_text(f.read())
                except (IOError, OSError) as e:
                    if getattr(e, 'errno', None) != 2 or attempt == tries - 1:
                        raise RouteError('app %s: cannot read %s for alias %s: %s' % (aid, k, alias, e))
                    gone = True
                    break
            if gone:
                break
        if not gone:
            return app, crt, key
        app = load_state(state_dir, [aid])[0].get(aid)
        if app is None:
            return None, {}, {}
    raise RouteError('app %s: its TLS files kept changing while this run read them' % aid)  # pragma: no cover


def template_environment():
    """The Jinja environment of the routes' templates: plain Jinja2 (a public API, none of Ansible's Templar), sandboxed
    and strict. The templates only print values the generator computed or check_settings checked: no filter, no
    lookup, no Ansible variable, and an undefined name is an error, as it is in Ansible's own template module."""
    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                                         undefined=StrictUndefined, autoescape=False)


def compile_templates(read_template, env=None):
    """name -> compiled template; read_template(name) returns the text of templates/routes/<name>."""
    env = env or template_environment()
    return dict((name, env.from_string(read_template(name))) for name in TEMPLATES)


def app_data(aid, app):
    """The app's routing data, as the proxies' Lua data plane reads it (files/rproxy.lua checks the same shape):
    only what the generator's `route` block says. check_app first."""
    r = app['route']
    return {
        'id': to_text(aid),
        'names': [to_text(n) for n in r['server_names']],
        'backends': [to_text(b) for b in r['backends']],
        'websocket': r['websocket'],
        'root_location': r['root_location'],
        # the location's prefix becomes rewrite_to minus its "$1" (the rewrite regex is the prefix, escaped)
        'locations': [{'path': to_text(loc['path']), 'rewrite_to': to_text(loc['rewrite_to'])} for loc in r['locations']],
    }


def data_bytes(aid, app):
    """apps/<id>.json: deterministic (sorted keys, no spaces), so a byte compare on the proxy tells a change."""
    return json.dumps(app_data(aid, app), sort_keys=True, separators=(',', ':'), ensure_ascii=True) + '\n'


def render_app(compiled, aid, app, settings):
    """The app's files (relative path -> text), TLS material excluded. check_app first. Every app has its data file;
    only apps with TLS aliases have server blocks (tls-servers/<id>.conf), the one thing that needs `nginx -t`."""
    files = {'apps/%s.json' % aid: data_bytes(aid, app)}
    if app.get('tls'):
        tv = dict(app_id=aid, app=app, route=app['route'], s=settings)
        files['tls-servers/%s.conf' % aid] = compiled['app.tls-servers.conf.j2'].render(tv)
    return files


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('sync_apps', 'settings', 'conf_dir', 'state_dir', 'test_command', 'pid_file',
                             'start_command', 'apply_socket', 'bulk_sync_threshold'))

    def _fail(self, msg):
        raise AnsibleActionFail(msg)

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = dict()
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args

        state_dir = args.get('state_dir')
        if not _str(state_dir) or not os.path.isabs(state_dir):
            self._fail('nginx_rproxy_routes: state_dir must be an absolute path on the controller (nginx_rproxy_state_dir, '
                       'default rproxy_state_dir), got %r' % (state_dir,))
        try:
            apps, routes_dir = load_state(state_dir, args.get('sync_apps'))
        except RouteError as e:
            self._fail('nginx_rproxy_routes: %s' % e)
        if not apps and task_vars.get('nginx_rproxy_apps'):
            # the group_vars file of paas-rproxy 0.1 is still in the inventory and nothing was migrated
            self._fail('nginx_rproxy_routes: the routing state is still in the inventory (group_vars rproxy_routes.json of '
                       'an older paas-rproxy) and %s has none. Run any paas-rproxy command with the inventory and state '
                       'directory once (e.g. `paas-rproxy migrate --inventory %s --state-dir %s`): it moves the state.'
                       % (state_dir, task_vars.get('inventory_dir'), state_dir))

        sync = args.get('sync_apps')
        full = sync is None
        if full:
            selected = sorted(apps)
        else:
            if isinstance(sync, string_types):
                sync = [s for s in re.split(r'[\s,]+', sync) if s]
            if not isinstance(sync, (list, tuple)):
                self._fail('nginx_rproxy_sync_apps must be a list of app ids')
            selected = sorted(set(to_text(s) for s in sync))
            for aid in selected:
                if not APP_ID_RE.match(aid):
                    self._fail('nginx_rproxy_sync_apps: %r is not an app id' % aid)

        settings = dict(args.get('settings') or {})
        settings['conf_dir'] = args.get('conf_dir') or settings.get('conf_dir') or '/etc/nginx/rproxy'
        try:
            settings = check_settings(settings)
        except RouteError as e:
            self._fail('nginx_rproxy_routes: %s' % e)
        conf_dir = settings['conf_dir']

        def read_template(name):
            with open(self._find_needle('templates', os.path.join('routes', name)), 'rb') as f:
                return to_text(f.read())
        compiled = compile_templates(read_template)

        files = {}
        secret_files = {}
        for aid in selected:
            app = apps.get(aid)
            if app is None:
                continue  # absent from the state: the module removes the app's files
            try:
                app, crt, key = checked_app_tls(state_dir, routes_dir, aid, app)
            except RouteError as e:
                self._fail('nginx_rproxy_routes: %s' % e)
            if app is None:
                continue  # deleted while this run read the state
            files.update(render_app(compiled, aid, app, settings))
            files.update(crt)
            secret_files.update(key)

        module_args = dict(
            conf_dir=conf_dir,
            apps=selected,
            full=full,
            files=files,
            secret_files=secret_files,
        )
        for k in ('test_command', 'pid_file', 'start_command', 'apply_socket', 'bulk_sync_threshold'):
            if args.get(k) is not None:
                module_args[k] = args[k]

        result.update(self._execute_module(module_name='nginx_rproxy_routes', module_args=module_args,
                                           task_vars=task_vars))
        result['apps_selected'] = len(selected)
        result['full_run'] = full
        return result
