# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runs tfe.audit.tfe_audit_trail_events pipelined: it reads the audit trail with the token in its arguments,
which must never be written to a temp file (``plugins/plugin_utils/_pipelining.py``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.tfe.audit.plugins.plugin_utils._pipelining import PipelinedAction


class ActionModule(PipelinedAction):

    MODULE = "tfe.audit.tfe_audit_trail_events"
    _supports_async = True
