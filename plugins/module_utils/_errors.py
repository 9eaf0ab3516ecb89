# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The collection's error types: raised once with words for the user, translated once at a module's or the
event source's edge.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class TfeAuditError(Exception):
    """Every failure the collection explains to its user; ``message`` is that explanation (never a secret)."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class FeedError(TfeAuditError):
    """The audit trail feed stopped before its position moved: a malformed answer, a file or a cursor."""
