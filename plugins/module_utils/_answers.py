# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a server answers, read and checked before anything else sees it.

Private to the collection (leading underscore): free to change between releases.

Every answer is hostile until it has the right shape: its body is read within :data:`MAX_BODY` (decompressed
with a bound too, so a small gzip bomb cannot fill memory), decoded without letting a ``RecursionError`` or a
``ValueError`` escape, and its values are checked before they are returned. What is wrong is reported as a
:class:`TfeError` naming the host, the request and the problem, never quoting the value.
"""

import json
import re
import zlib

from ansible_collections.tfe.audit.plugins.module_utils._errors import MASK, TfeError
from ansible_collections.tfe.audit.plugins.module_utils._jsonsplit import split_array, split_object
from ansible_collections.tfe.audit.plugins.module_utils._time import TimeError, parse_time

# 1000 audit events of a few KiB each fit many times over; a server sending more is not HCP Terraform.
MAX_BODY = 64 * 1024 * 1024
CHUNK = 64 * 1024
# Only what read_body can decompress within its bound (requests would also offer br and zstd when installed).
ACCEPT_ENCODING = "gzip, deflate"


def server_text(value, limit=300, hide=()):
    """Text from the server (an error detail, a header) fit for a message: each secret in ``hide`` (the tokens
    the request sent) masked before anything is cut, so that no part of one is left; control characters as
    spaces; at most ``limit`` characters. A hostile server could otherwise flood the output or forge log lines."""
    text = str(value)
    for secret in hide:
        text = text.replace(secret, MASK) if secret else text
    text = "".join(" " if ord(char) < 32 or ord(char) == 127 else char for char in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def decode_jsonapi_errors(body, hide=()):
    """Turn a JSON:API error document into a list of readable strings (``hide``: as :func:`server_text`).

    Accepts ``{"errors": [{"status": "404", "title": "not found", "detail": "..."}]}``
    (``status`` a string or a number), go-tfe's ``{"errors": ["plain message"]}``, or
    anything else (returns ``[]``). Never raises.
    """
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    texts = []
    for error in errors:
        if isinstance(error, dict):
            parts = [server_text(error[key], hide=hide) for key in ("title", "detail") if error.get(key) not in (None, "")]
            if parts:
                texts.append(": ".join(parts))
        elif error not in (None, ""):
            texts.append(server_text(error, hide=hide))
    return texts


class BodyError(Exception):
    """A body :func:`read_body` cannot take; the client turns it into a :class:`TfeError` naming the request."""


def _decompressor(encoding):
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or a zlib header, found by zlib
    raise BodyError("a body in an encoding that was not offered (Content-Encoding: %s)" % server_text(encoding, 40))


def read_body(chunks, encoding, limit=None):
    """The body from ``chunks`` (the raw bytes as sent), decompressed as ``encoding`` says (the
    Content-Encoding header), of at most ``limit`` bytes (default :data:`MAX_BODY`).

    Raises :class:`BodyError` past the limit, for an encoding it cannot read and for a broken compressed
    stream. Never holds more than ``limit`` decompressed bytes plus one chunk, however well the body compresses.
    """
    limit = MAX_BODY if limit is None else limit
    decompressor, body = _decompressor(encoding), bytearray()
    try:
        for chunk in chunks:
            while chunk:
                if decompressor is None:
                    body += chunk
                    chunk = b""
                else:
                    body += decompressor.decompress(chunk, limit + 1 - len(body))
                    chunk = decompressor.unconsumed_tail
                    if decompressor.eof and decompressor.unused_data:  # a further gzip member
                        chunk, decompressor = decompressor.unused_data + chunk, _decompressor(encoding)
                if len(body) > limit:
                    raise BodyError("a body larger than %d bytes (the limit, far above what HCP Terraform sends)"
                                    % limit)
    except zlib.error:
        raise BodyError("a compressed body that cannot be decompressed") from None
    return bytes(body)


class Undecodable:
    """An audit event that could not be decoded, kept as the bytes the server sent.

    The feed delivers it as it is (marked unreadable) rather than dropping it or failing every event of its
    page. ``reason`` says why, never quoting the bytes.
    """

    __slots__ = ("raw", "reason")

    def __init__(self, raw, reason):
        self.raw = raw
        self.reason = reason

    def __repr__(self):
        return "Undecodable(<%d bytes>, %r)" % (len(self.raw), self.reason)

    def __eq__(self, other):
        return isinstance(other, Undecodable) and (self.raw, self.reason) == (other.raw, other.reason)

    def __hash__(self):
        return hash((self.raw, self.reason))


def _why(exc):
    if isinstance(exc, RecursionError):
        return "nested too deeply to decode"
    return "not valid JSON (%s)" % server_text(exc, 120)


class Answer:
    """One HTTP answer, its body already read (within :data:`MAX_BODY`), with the request it answers.

    :param where: the base URL, named in every message.
    :param hide: the secrets the request sent, masked in whatever text of the answer a message quotes.
    """

    def __init__(self, where, method, path, status, reason, headers, body, hide=()):
        self.where, self.method, self.path = where, method, path
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.hide = tuple(hide)

    def text(self, value, limit=300):
        """``value`` (text the server chose) fit for a message: :func:`server_text`, the request's secrets masked."""
        return server_text(value, limit, self.hide)

    def refuse(self, what):
        """A :class:`TfeError` (kind ``response``, no ``status``: the status was the expected one) for this answer:
        ``what`` the server answered that cannot be used."""
        return TfeError("%s answered %s %s with %s" % (self.where, self.method, self.path, what),
                        method=self.method, path=self.path, kind="response")

    def _content_type(self):
        return self.text(self.headers.get("Content-Type", "no content type"))

    def _not_json(self):
        return self.refuse("HTTP %s and a body that is not JSON (%s). Does hostname point at HCP Terraform, and not "
                           "at a proxy or a login page?" % (self.status, self._content_type()))

    def json(self):
        """The decoded body (``None`` when empty); a body that is not JSON, or too deep, is a :class:`TfeError`."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except RecursionError:
            raise self.refuse("a JSON body nested too deeply to decode") from None
        except ValueError:
            raise self._not_json() from None

    def unexpected(self):
        """The :class:`TfeError` for a status the request did not expect, with the server's own words."""
        try:
            body = json.loads(self.body) if self.body else None
        except (RecursionError, ValueError):
            body = None
        errors = decode_jsonapi_errors(body, self.hide)
        if 300 <= self.status < 400:
            message = "redirected to %s; set hostname to the final address" % self.text(self.headers.get("Location"))
        elif errors:
            message = "; ".join(errors)
        elif body is None and self.body:
            message = "a body that is not JSON (%s)" % self._content_type()
        else:
            message = self.text(self.reason or "no details")
        return TfeError("%s %s failed with HTTP %s: %s" % (self.method, self.path, self.status, message),
                        status=self.status, method=self.method, path=self.path, errors=errors)

    def audit_trail_page(self):
        """The decoded page, ``{"data": [...], "pagination": {...}}``, as long as its top level is an object.

        A page that Python cannot decode whole (an event nested thousands of levels deep, or not valid JSON) is
        split without recursion, and each event decoded on its own: one that still cannot be is returned as an
        :class:`Undecodable` in ``data``, in its place. A page whose structure cannot be found is a
        :class:`TfeError` (kind ``response``).
        """
        try:
            page = json.loads(self.body) if self.body else None
        except (RecursionError, ValueError) as exc:
            page = self._split_page(exc)
        if not isinstance(page, dict):
            shape = "empty" if not self.body else "null" if page is None else type(page).__name__
            raise self.refuse("a body that is not a JSON object (%s)" % shape)
        return page

    def _split_page(self, failure):
        try:
            members = split_object(self.body)
        except ValueError as exc:
            if isinstance(failure, RecursionError):
                raise self.refuse("a JSON body nested too deeply to decode, whose structure cannot be found (%s)"
                                  % exc) from None
            raise self._not_json() from None
        page = {}
        for key, raw in members:
            try:
                if key == "data" and raw.startswith(b"["):
                    page[key] = [_event(element) for element in split_array(raw)]
                else:
                    page[key] = json.loads(raw)
            except (RecursionError, ValueError) as exc:
                raise self.refuse("a page whose %r member is %s" % (self.text(key, 40), _why(exc))) from None
        return page


def _event(raw):
    try:
        return json.loads(raw)
    except (RecursionError, ValueError) as exc:
        return Undecodable(raw, _why(exc))


# -- authentication-token documents ---------------------------------------------------------------
#
# A generated token is what playbooks store (a vault file, a vars file) and later plays read back *as a
# template*: a server that answers "{{ lookup('pipe', ...) }}" as the token would run code on the controller.
# Real tokens are "<14 chars>.atlasv1.<secret>"; ids look like "at-sjt83qTw3GZatuPm"; times like
# "2028-01-05T10:11:12.000Z". Anything else is refused (or, after a create, dropped), and never echoed.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._-]{16,512}")
_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TIME_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
METADATA = (("id", None), ("created_at", "created-at"), ("expired_at", "expired-at"), ("last_used_at", "last-used-at"))


def token_problem(value):
    """What is wrong with a token from the server (never the value itself), or ``None``."""
    if not isinstance(value, str):
        return "is not a string but %s" % ("null" if value is None else type(value).__name__)
    if not value:
        return "is empty"
    if not 16 <= len(value) <= 512:
        return "is %d characters long (a real one has 16 to 512)" % len(value)
    if not _TOKEN_SHAPE.fullmatch(value):
        return "holds characters other than letters, digits, '.', '_' and '-' (template or control characters)"
    return None


def metadata_problem(key, value):
    """``None`` when ``value`` is null or of the form of the token's ``key``; else what is wrong (never the value)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "is not a string but %s" % type(value).__name__
    if not (_ID_SHAPE if key == "id" else _TIME_SHAPE).fullmatch(value):
        return "is not of the expected form (%d characters)" % len(value)
    if key != "id":
        try:
            parse_time(value)
        except TimeError:
            return "is not a real date-time in the years 1 to 9999 (UTC)"
    return None


def token_metadata(answer, with_secret):
    """The token's ``id``, ``created_at``, ``expired_at`` and ``last_used_at`` from an authentication-token document.

    A read (``with_secret`` false) refuses the answer when a value is not of its form, and drops a token in it.
    After a create the new token is all that matters (the old one no longer works): a token that does not look
    like one is refused, but a value of the wrong form is returned as ``None`` with a line in ``warnings``.
    """
    document = answer.json()
    data = document.get("data") if isinstance(document, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attributes, dict):
        raise _planted(answer, "a body that is not an authentication-token document")
    metadata = dict((key, data.get("id") if name is None else attributes.get(name)) for key, name in METADATA)
    warnings = []
    for key, dummy in METADATA:
        problem = metadata_problem(key, metadata[key])
        if problem and not with_secret:
            raise _planted(answer, "a token %s that %s" % (key, problem))
        if problem:
            metadata[key] = None
            warnings.append("The new audit trail token was received, but its %s in %s's answer %s; it is returned "
                            "as null." % (key, answer.where, problem))
    if not with_secret:
        return metadata
    problem = token_problem(attributes.get("token"))
    if problem:
        raise _planted(answer, "a token that %s" % problem)
    return dict(metadata, token=attributes["token"], warnings=warnings)


def _planted(answer, what):
    return answer.refuse("%s; refusing it. Nothing was returned or stored: a value like that may be planted (a "
                         "template that later plays would run). Check that hostname points at HCP Terraform." % what)
