# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runs the tfe_audit_trail_token module pipelined when its arguments hold a secret, and hides its output whenever
it carries a new secret.

Its arguments may hold a stored secret (``known_token``) and the API token: then the module runs pipelined,
so they are never written to a temp file, or not at all (``plugin_utils/_pipelining.py``). Its result
is hidden whenever it holds the new secret, its warnings shown all the same (``_hidden_result.py``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.tfe.audit.plugins.plugin_utils._hidden_result import hide_secret
from ansible_collections.tfe.audit.plugins.plugin_utils._pipelining import PipelinedAction


class ActionModule(PipelinedAction):

    MODULE = "tfe.audit.tfe_audit_trail_token"
    # An async job's result is read back by async_status, past this plugin: it would print the secret.
    _supports_async = False

    def finish(self, result):
        return hide_secret(self._task, result)
