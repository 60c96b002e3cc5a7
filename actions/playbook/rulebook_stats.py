# Callback plugin shipped inside the rulebook binary (actions/playbook). It is
# written to a private temporary directory for one run of ansible-playbook or
# ansible and loaded through ANSIBLE_CALLBACK_PLUGINS. It changes nothing on
# stdout; at the end of the run it writes the recap, the set_stats data and the
# failed tasks as JSON to the file named by RULEBOOK_STATS_FILE.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = '''
    name: rulebook_stats
    type: aggregate
    short_description: write the recap and set_stats data as JSON for rulebook
    description:
      - Writes per-host stats, custom stats (set_stats) and failed tasks to the
        file named by the RULEBOOK_STATS_FILE environment variable.
'''

import json
import os

from ansible.plugins.callback import CallbackBase

MAX_FAILURES = 50
MAX_MSG = 2000


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'rulebook_stats'
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get('RULEBOOK_STATS_FILE')
        self._failures = []

    def _record(self, kind, result):
        if len(self._failures) >= MAX_FAILURES:
            return
        res = getattr(result, '_result', {}) or {}
        msg = res.get('msg') or res.get('reason') or ''
        if not isinstance(msg, str):
            msg = json.dumps(msg, default=str)
        stderr = res.get('stderr')
        if stderr and isinstance(stderr, str):
            msg = msg + ': ' + stderr if msg else stderr
        task = getattr(result, '_task', None)
        host = getattr(result, '_host', None)
        self._failures.append({
            'kind': kind,
            'host': host.get_name() if host is not None else '',
            'task': task.get_name() if task is not None else '',
            'msg': msg[:MAX_MSG],
            'rc': res.get('rc'),
        })

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._record('failed', result)

    def v2_runner_on_unreachable(self, result):
        self._record('unreachable', result)

    def v2_playbook_on_stats(self, stats):
        if not self._path:
            return
        hosts = {}
        for host in sorted(stats.processed.keys()):
            hosts[host] = stats.summarize(host)
        out = {
            'hosts': hosts,
            'custom': stats.custom or {},
            'failures': self._failures,
        }
        tmp = self._path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(out, f, default=str)
        os.rename(tmp, self._path)
