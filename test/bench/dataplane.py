#!/usr/bin/python3
# The proxies' Lua data plane at scale, on this machine (no lab): N synthetic apps rendered with the role's real
# templates, rproxy.lua and action plugin (test/contract/vars/render_routes.py) into a temp prefix; nginx on free loopback
# ports. Prints JSON: `nginx -t` time, start-to-ready time (init loads every app file), master/worker RSS after start
# and after one request per app, live-apply latency of one app (POST on the unix socket until the first request is
# routed), reload time. Every process it starts is stopped; the temp prefix is removed.
#   /usr/bin/python3 test/bench/dataplane.py [N ...]      (default: 2000 10000)
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
HELPER = os.path.join(REPO, 'test', 'contract', 'vars', 'render_routes.py')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def state(n, out):
    apps = {}
    for i in range(n):
        aid = 'a%d-bench' % i
        names = ['%s.apps.example.com' % aid] + (['www.a%d.example.org' % i] if i % 3 == 0 else [])
        be = ['127.0.0.1:9', '127.0.0.2:9']  # nothing listens: requests measure routing, not gears
        locs = [{'path': '/health', 'backend': '/', 'rewrite_regex': '^/health/*(.*)$', 'rewrite_to': '/$1'}] if i % 10 == 0 else []
        apps[aid] = {'fqdn': names[0], 'aliases': names[1:], 'route': {
            'upstream': aid, 'map_value': aid, 'backends': be, 'server_names': names, 'websocket': False,
            'locations': locs, 'root_location': True, 'dedicated_server': bool(locs)}}
    os.makedirs(os.path.join(out, 'routes'))
    with open(os.path.join(out, 'routes', 'rproxy_routes.json'), 'w') as f:
        json.dump({'nginx_rproxy_routes_schema': 2, 'nginx_rproxy_apps': apps}, f)


def rss_mb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS'):
                return round(int(line.split()[1]) / 1024, 1)


def get(port, host, path='/'):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    c.request('GET', path, headers={'Host': host})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        http.client.HTTPConnection.__init__(self, 'localhost', timeout=10)
        self.path_ = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path_)


def bench(n):
    tmp = tempfile.mkdtemp(prefix='rproxy-bench-')
    http_p, https_p, health_p = free_port(), free_port(), free_port()
    res = {'apps': n}
    d = os.path.join(tmp, 'nginx')
    conf = os.path.join(d, 'nginx.conf')
    master = None
    try:
        state(n, os.path.join(tmp, 'state'))
        env = dict(os.environ, RPROXY_PORTS='%d,%d,%d' % (http_p, https_p, health_p))
        crt, key = os.path.join(REPO, 'test/fixtures/tls/a.crt'), os.path.join(REPO, 'test/fixtures/tls/a.key')
        subprocess.run(['/usr/bin/python3', HELPER, os.path.join(tmp, 'state'), d, crt, key], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        ts = []
        for _ in range(3):
            t0 = time.time()
            subprocess.run(['nginx', '-t', '-q', '-p', d, '-c', conf], check=True)
            ts.append(time.time() - t0)
        res['nginx_t_s'] = [round(x, 3) for x in ts]
        t0 = time.time()
        subprocess.run(['nginx', '-p', d, '-c', conf], check=True)
        while True:
            try:
                get(health_p, 'localhost', '/healthz')
                break
            except OSError:
                time.sleep(0.01)
        res['start_to_ready_s'] = round(time.time() - t0, 3)
        with open(os.path.join(d, 'nginx.pid')) as f:
            master = int(f.read())

        def workers():
            out = subprocess.run(['pgrep', '-P', str(master)], capture_output=True, text=True).stdout.split()
            return [int(p) for p in out]
        res['rss_mb_after_start'] = {'master': rss_mb(master), 'workers': [rss_mb(w) for w in workers()]}
        t0 = time.time()
        codes = {}
        for i in range(n):
            s = get(http_p, 'a%d-bench.apps.example.com' % i)
            codes[s] = codes.get(s, 0) + 1
        res['one_request_per_app'] = {'s': round(time.time() - t0, 2), 'statuses': codes}
        res['rss_mb_after_every_app'] = {'master': rss_mb(master), 'workers': [rss_mb(w) for w in workers()]}
        lat = []
        for k in range(21):
            aid = 'new%d-bench' % k
            body = json.dumps({'set': {aid: {'id': aid, 'names': ['%s.example.net' % aid], 'backends': ['127.0.0.1:9'],
                                             'websocket': False, 'root_location': True, 'locations': []}}})
            t0 = time.time()
            u = Unix(os.path.join(d, 'run', 'apply.sock'))
            u.request('POST', '/apply', body=body)
            r = u.getresponse()
            r.read()
            u.close()
            assert r.status == 200, r.status
            assert get(http_p, '%s.example.net' % aid) != 404
            lat.append((time.time() - t0) * 1000)
        lat.sort()
        res['live_apply_one_app_ms'] = {'p50': round(lat[10], 1), 'max': round(lat[-1], 1), 'samples': len(lat)}
        before = set(workers())
        t0 = time.time()
        subprocess.run(['nginx', '-p', d, '-c', conf, '-s', 'reload'], check=True)
        while before & set(workers()) or not workers():
            time.sleep(0.02)
        res['reload_until_old_workers_gone_s'] = round(time.time() - t0, 2)
        res['rss_mb_after_reload'] = {'master': rss_mb(master), 'workers': [rss_mb(w) for w in workers()]}
    finally:
        if master:
            subprocess.run(['nginx', '-p', d, '-c', conf, '-s', 'quit'])
            for _ in range(200):
                try:
                    os.kill(master, 0)
                    time.sleep(0.05)
                except OSError:
                    break
        shutil.rmtree(tmp, ignore_errors=True)
    return res


if __name__ == '__main__':
    sizes = [int(a) for a in sys.argv[1:]] or [2000, 10000]
    print(json.dumps([bench(n) for n in sizes], indent=1))
