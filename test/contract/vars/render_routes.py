#!/usr/bin/python3
# Test helper (not a test): renders a routing state (STATE_DIR/routes/index.json + apps/<id>.json) into a self-contained
# nginx prefix with the role's REAL templates, its Lua data plane (files/rproxy.lua) and the action plugin's own
# load_state/check_app/check_settings/render_app, so `nginx -t -p DIR -c DIR/nginx.conf` tests exactly what the role
# would install (and `nginx -p DIR -c DIR/nginx.conf` serves it: ports 8080/8443 unless overridden by RPROXY_PORTS=
# "http,https,health", apply socket DIR/run/apply.sock).
#   render_routes.py STATE_DIR OUT_DIR WILDCARD_CRT WILDCARD_KEY
# Prints {"files": [...]} (relative to OUT_DIR/rproxy). Exits 3 with the RouteError on a failed check.
import importlib.util
import json
import os
import shutil
import sys

import yaml
from ansible.template import AnsibleEnvironment

ROLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'roles', 'nginx_rproxy')
spec = importlib.util.spec_from_file_location('nginx_rproxy_routes_action',
                                              os.path.join(ROLE, 'action_plugins', 'nginx_rproxy_routes.py'))
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)

state_dir, out, wc_crt, wc_key = sys.argv[1:5]
conf = os.path.join(out, 'rproxy')
for d in ('snippets', 'apps', 'tls-servers', 'tls', 'lua'):
    os.makedirs(os.path.join(conf, d), exist_ok=True)
env = AnsibleEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)

# base configuration: the role's templates with its defaults (only what those templates need overridden)
with open(os.path.join(ROLE, 'defaults', 'main.yml')) as f:
    rv = yaml.safe_load(f)
http_port, https_port, health_port = (os.environ.get('RPROXY_PORTS') or '8080,8443,18081').split(',')
os.makedirs(os.path.join(out, 'run'), mode=0o700, exist_ok=True)
rv.update(ansible_managed='test', nginx_rproxy_conf_dir=conf, nginx_rproxy_cloud_domain='apps.example.com',
          nginx_rproxy_wildcard_cert_file=wc_crt, nginx_rproxy_listen_ipv6=not os.environ.get('RPROXY_PORTS'),
          nginx_rproxy_http_port=int(http_port), nginx_rproxy_https_port=int(https_port),
          nginx_rproxy_health_listen='127.0.0.1:' + health_port,
          nginx_rproxy_apply_socket=os.path.join(out, 'run', 'apply.sock'))


def to_json(v):
    return json.dumps(v)


env.filters['to_json'] = to_json
for src, dest in (('rproxy.conf.j2', 'rproxy.conf'), ('503.conf.j2', 'snippets/503.conf'),
                  ('routed.conf.j2', 'snippets/routed.conf')):
    with open(os.path.join(ROLE, 'templates', src)) as f:
        text = env.from_string(f.read()).render(rv)
    with open(os.path.join(conf, dest), 'w') as f:
        f.write(text)
shutil.copy(os.path.join(ROLE, 'files', 'rproxy.lua'), os.path.join(conf, 'lua', 'rproxy.lua'))
shutil.copy(wc_crt, os.path.join(conf, 'wildcard.crt'))
shutil.copy(wc_key, os.path.join(conf, 'wildcard.key'))
with open(os.path.join(out, 'nginx.conf'), 'w') as f:
    f.write('load_module /usr/lib/nginx/modules/ndk_http_module.so;\nload_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\nworker_processes 2;\npid %s/nginx.pid;\n'
            'error_log %s/error.log notice;\nevents {}\nhttp {\n    access_log off;\n'
            '    include %s/rproxy.conf;\n}\n' % (out, out, conf))

settings = plugin.check_settings(dict(conf_dir=conf, https_port=int(https_port),
                                      listen_ipv6=not os.environ.get('RPROXY_PORTS'), http2=True))
try:
    apps, base_dir = plugin.load_state(state_dir)
except plugin.RouteError as e:
    sys.stderr.write('%s\n' % e)
    sys.exit(3)


def read_template(name):
    with open(os.path.join(ROLE, 'templates', 'routes', name)) as f:
        return f.read()


compiled = plugin.compile_templates(read_template)  # the plugin's own (plain Jinja2) environment
files = {}
try:
    for aid in sorted(apps):
        plugin.check_app(aid, apps[aid])
        files.update(plugin.render_app(compiled, aid, apps[aid], settings))
        for t in apps[aid].get('tls') or []:
            for key, ext in (('cert_file', 'crt'), ('key_file', 'key')):
                with open(os.path.join(base_dir, t[key])) as f:
                    files['tls/%s/%s.%s' % (aid, t['alias'], ext)] = f.read()
except plugin.RouteError as e:
    sys.stderr.write('%s\n' % e)
    sys.exit(3)
for rel, text in files.items():
    os.makedirs(os.path.dirname(os.path.join(conf, rel)), exist_ok=True)
    with open(os.path.join(conf, rel), 'w') as f:
        f.write(text)
print(json.dumps({'files': sorted(files)}))
