# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The collection's errors: one base class, one subclass per kind of failure.

Private to the collection (leading underscore): free to change between releases.

Each error is raised once, where the failure is found, with the words a person needs; code in between
lets it pass. A module's edge (``TfeModule.run``) turns any :class:`TfeAuditError` into ``fail_json``;
the event source turns it into an event. A message never holds a secret, nor a value the server sent
unless it went through ``server_text`` (the request's secrets masked, control characters removed, length
capped).
"""

# What stands for a secret wherever one would show, as ansible-core's no_log values do.
MASK = "********"


class TfeAuditError(Exception):
    """Any failure the collection reports, with ``message`` fit to show as it is."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class OptionError(TfeAuditError):
    """Bad input, found before any API call. The message names the option and shows a valid example."""


class TfeError(TfeAuditError):
    """The API could not be used: an HTTP status, the network, TLS, the platform, or a hostile answer.

    ``kind`` says which: ``http`` (an unexpected status; ``status`` holds it), ``network``, ``timeout``,
    ``tls``, ``request`` (it could not be sent: a header value HTTP does not allow), ``platform`` (not HCP
    Terraform, or not known to be), ``response`` (an answer of the wrong shape, too large or too deeply
    nested). ``method`` and ``path`` name the request, ``errors`` the server's JSON:API error texts (already
    cleaned). Never the token: requests are authenticated by an
    auth object, so a URL or a path holds no secret.
    """

    def __init__(self, message, status=None, method=None, path=None, errors=None, kind="http"):
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.errors = errors or []
        self.kind = kind

    @property
    def details(self):
        """The server's error texts joined for a message, e.g. ``invalid attribute: Expired at must be in the future``."""
        return "; ".join(self.errors)


class FeedError(TfeAuditError):
    """The audit trail feed stopped before its position moved: a malformed answer, a file or a cursor."""
