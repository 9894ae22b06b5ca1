# -*- coding: utf-8 -*-
# paas-rproxy: playbook results as data. A notification callback (the human output of the stdout
# callback is unchanged) that appends one JSON object per line to the file named by the environment
# variable RPROXY_RESULTS_FILE; without it the plugin does nothing.
# Apache-2.0
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: rproxy_results
type: notification
short_description: Task results and the play recap as JSON lines, for the paas-rproxy runner and tests
description:
  - Appends one JSON object per line to the file named by C(RPROXY_RESULTS_FILE).
  - >-
    One task line per host and task result, with the keys event (C(task)), host, task, role, action,
    status (ok, changed, failed, ignored, unreachable or skipped), msg, result and duration_ms (from the
    task's start on that host to its result: the action plugin, the connection and the module). Results are the clean copies
    Ansible gives every callback, so C(no_log) tasks are censored; result is left out when its JSON is larger
    than 64 KiB.
  - >-
    Task lines whose status is failed, ignored or unreachable also carry error, the message an operator
    reads: the module's msg, with its stderr when that says more; for a loop, the first failed item's.
    Handlers are reported like tasks.
  - >-
    One recap line at the end, event C(recap), with per host ok, changed, failures, unreachable, skipped,
    rescued and ignored. A run that stopped early (a parse error, a signal) has no recap line; its hosts
    have no result.
requirements: [enable it in callbacks_enabled (ansible.cfg) or ANSIBLE_CALLBACKS_ENABLED]
'''

import json
import os
import time

from ansible.parsing.ajson import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

MAX_RESULT = 65536
MAX_ERROR = 2000


def _error(res):
    """One message for a failure: msg (plus stderr when it differs); a loop's generic msg gives way to its first failed item's."""
    items = res.get('results')
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and (item.get('failed') or item.get('unreachable')):
                return _error(item)
    parts = []
    for key in ('msg', 'stderr'):
        v = res.get(key)
        if isinstance(v, str) and v and v not in parts:
            parts.append(v)
    return ': '.join(parts)[:MAX_ERROR]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'rproxy_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get('RPROXY_RESULTS_FILE') or None
        self.disabled = self._path is None
        self._started = {}  # (host, task uuid) -> monotonic start

    def _emit(self, obj):
        line = json.dumps(obj, cls=AnsibleJSONEncoder, sort_keys=True)
        with open(self._path, 'a') as f:
            f.write(line + '\n')

    def _task(self, result, status):
        task = result._task
        res = result._result if isinstance(result._result, dict) else {}
        if status == 'ok' and res.get('changed'):
            status = 'changed'
        role = getattr(task, '_role', None)
        obj = {
            'event': 'task',
            'host': result._host.get_name(),
            'task': task.get_name(),
            'role': role.get_name() if role else None,
            'action': task.action,
            'status': status,
            'msg': res.get('msg') if isinstance(res.get('msg'), str) else None,
        }
        started = self._started.pop((obj['host'], task._uuid), None)
        if started is not None:
            obj['duration_ms'] = int((time.monotonic() - started) * 1000)
        if status in ('failed', 'ignored', 'unreachable'):
            obj['error'] = _error(res)
        body = json.dumps(res, cls=AnsibleJSONEncoder)
        if len(body) <= MAX_RESULT:
            obj['result'] = res
        self._emit(obj)

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def v2_runner_on_ok(self, result):
        self._task(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task(result, 'ignored' if ignore_errors else 'failed')

    def v2_runner_on_unreachable(self, result):
        self._task(result, 'unreachable')

    def v2_runner_on_skipped(self, result):
        self._task(result, 'skipped')

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for h in sorted(stats.processed.keys()):
            hosts[h] = stats.summarize(h)
        self._emit({'event': 'recap', 'hosts': hosts})
