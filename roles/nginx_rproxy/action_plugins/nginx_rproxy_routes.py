# -*- coding: utf-8 -*-
# paas-rproxy: controller side of nginx_rproxy_routes.
# Renders the selected applications' nginx files with the role's templates (templates/routes/*.j2,
# which only print the generator's `route` block), reads their TLS material, validates every value
# that reaches a configuration file, and calls the module of the same name ONCE per host.
# Apache-2.0
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types
from ansible.plugins.action import ActionBase
from ansible.template import AnsibleEnvironment

APP_ID_RE = re.compile(r'^[a-z0-9]+-[a-z0-9]+$')
UPSTREAM_RE = re.compile(r'^[a-z0-9][a-z0-9-]*$')
HOST_RE = re.compile(r'^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$')
BACKEND_RE = re.compile(r'^(\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}$')
PATH_RE = re.compile(r'^(/[A-Za-z0-9._~!&()*+,=:@%/-]{0,1023})?$')  # same set as the core's intake rule
REL_FILE_RE = re.compile(r'^[A-Za-z0-9_.][A-Za-z0-9_./*-]*$')

TEMPLATES = ('app.map.j2', 'app.upstream.conf.j2', 'app.server.conf.j2')


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('sync_apps', 'settings', 'conf_dir', 'base_dir', 'test_command', 'pid_file',
                             'start_command', 'apps_var'))

    def _fail(self, msg):
        raise AnsibleActionFail(msg)

    def _check_app(self, aid, app):
        if not APP_ID_RE.match(aid):
            self._fail('app id %r is not <name>-<namespace>' % aid)
        if not isinstance(app, dict) or not isinstance(app.get('route'), dict):
            self._fail('app %s: no "route" block (regenerate the vars with paas-rproxy)' % aid)
        r = app['route']
        up = r.get('upstream')
        backends = r.get('backends') or []
        if up is not None and (not isinstance(up, string_types) or not UPSTREAM_RE.match(up)):
            self._fail('app %s: bad route.upstream %r' % (aid, up))
        if up is not None and not backends:
            self._fail('app %s: route.upstream set but no backends (an empty upstream stops nginx)' % aid)
        for b in backends:
            if not isinstance(b, string_types) or not BACKEND_RE.match(b):
                self._fail('app %s: bad backend %r' % (aid, b))
        names = r.get('server_names') or []
        if not names:
            self._fail('app %s: route.server_names is empty' % aid)
        for n in names:
            if not isinstance(n, string_types) or not HOST_RE.match(n) or len(n) > 253:
                self._fail('app %s: bad server name %r' % (aid, n))
        for loc in r.get('locations') or []:
            for k in ('frontend', 'backend'):
                v = loc.get(k) if isinstance(loc, dict) else None
                if v is None or not isinstance(v, string_types) or not PATH_RE.match(v):
                    self._fail('app %s: bad location %s %r' % (aid, k, v))
        for t in app.get('tls') or []:
            if not isinstance(t, dict) or not HOST_RE.match(to_text(t.get('alias', ''))):
                self._fail('app %s: bad tls entry' % aid)
            for k in ('cert_file', 'key_file'):
                v = t.get(k)
                if not isinstance(v, string_types) or not REL_FILE_RE.match(v) or '..' in v.split('/'):
                    self._fail('app %s: tls %s must be a relative path inside the inventory, got %r' % (aid, k, v))

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = dict()
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args

        apps_var = args.get('apps_var', 'nginx_rproxy_apps')
        # Read the routing state raw: its event strings are unsafe and must never be templated; templating
        # 10,000 apps would also be slow. Only a templated expression (a string) is resolved.
        apps = task_vars.get(apps_var)
        if isinstance(apps, string_types):
            apps = self._templar.template(apps)
        if apps is None:
            apps = {}
        if not isinstance(apps, dict):
            self._fail('%s must be a mapping of app id -> app' % apps_var)

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
        conf_dir = args.get('conf_dir') or settings.get('conf_dir') or '/etc/nginx/rproxy'
        settings['conf_dir'] = conf_dir
        base_dir = args.get('base_dir') or task_vars.get('inventory_dir') or '.'

        env = self._templar.copy_with_new_env(environment_class=AnsibleEnvironment, trim_blocks=True,
                                               lstrip_blocks=True, keep_trailing_newline=True).environment
        compiled = {}
        for name in TEMPLATES:
            path = self._find_needle('templates', os.path.join('routes', name))
            with open(path, 'rb') as f:
                compiled[name] = env.from_string(to_text(f.read()))

        files = {}
        secret_files = {}
        for aid in selected:
            app = apps.get(aid)
            if app is None:
                continue  # absent from the state: the module removes the app's files
            self._check_app(aid, app)
            route = app['route']
            tv = dict(app_id=aid, app=app, route=route, s=settings)
            files['maps/%s.map' % aid] = compiled['app.map.j2'].render(tv)
            if route.get('upstream'):
                files['upstreams/%s.conf' % aid] = compiled['app.upstream.conf.j2'].render(tv)
            if route.get('dedicated_server'):
                files['servers/%s.conf' % aid] = compiled['app.server.conf.j2'].render(tv)
            for t in app.get('tls') or []:
                alias = to_text(t['alias'])
                for key, ext, dest in (('cert_file', 'crt', files), ('key_file', 'key', secret_files)):
                    src = os.path.join(base_dir, to_text(t[key]))
                    try:
                        with open(src, 'rb') as f:
                            dest['tls/%s/%s.%s' % (aid, alias, ext)] = to_text(f.read())
                    except (IOError, OSError) as e:
                        self._fail('app %s: cannot read %s for alias %s: %s' % (aid, key, alias, e))

        module_args = dict(
            conf_dir=conf_dir,
            apps=selected,
            full=full,
            files=files,
            secret_files=secret_files,
        )
        for k in ('test_command', 'pid_file', 'start_command'):
            if args.get(k) is not None:
                module_args[k] = args[k]

        result.update(self._execute_module(module_name='nginx_rproxy_routes', module_args=module_args,
                                           task_vars=task_vars))
        result['apps_selected'] = len(selected)
        result['full_run'] = full
        return result
