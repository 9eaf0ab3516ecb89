# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Split a JSON object or array into the raw bytes of its members, without recursion.

Private to the collection (leading underscore): free to change between releases.

Python's ``json`` decoder recurses once per level of nesting: an answer nested a few thousand levels deep
raises ``RecursionError`` for the whole document. To keep the events of an audit trail page that holds one
such event, the page is split here instead (an iterative scan that honours strings and their escapes) and
each event is decoded on its own. Only the structure is checked; what lies inside a member is left to
``json.loads``. Every failure is a ``ValueError`` saying what is wrong, never quoting the bytes.
"""

import json
import re

_WHITESPACE = b" \t\r\n"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
# At the level being split, commas and colons matter; deeper inside a member only the depth does, so runs of
# brackets are taken at once (a hostile answer of a million '[' is one step, not a million).
_SHALLOW = re.compile(rb'["\[\]{},:]')
_DEEP = re.compile(rb'"|[\[{]+|[\]}]+')


def _closing_run(token, depth):
    """How many brackets of a closing run to take while staying inside the member (depth 2 or more)."""
    return min(len(token), depth - 1)


def _children(body, start):
    """The spans of the direct children of the container opening at ``body[start]``, and the end of it."""
    depth, pos, child, spans = 0, start, start + 1, []
    while True:
        match = (_SHALLOW if depth <= 1 else _DEEP).search(body, pos)
        if match is None:
            raise ValueError("it ends before its closing bracket")
        token, pos = match.group(), match.end()
        if token == b'"':
            string = _STRING.match(body, match.start())
            if string is None:
                raise ValueError("a string in it does not end")
            pos = string.end()
        elif token[:1] in b"[{":
            depth += len(token)
        elif token[:1] in b"]}":
            taken = _closing_run(token, depth) if depth > 1 else 1
            depth -= taken
            pos = match.start() + taken
            if depth == 0:
                spans.append((child, match.start()))
                return _non_empty(body, spans), pos
        elif token == b"," and depth == 1:
            spans.append((child, match.start()))
            child = pos


def _non_empty(body, spans):
    """Drop the one empty span of an empty container; refuse any other (``[1,,2]``, ``[1,]``)."""
    stripped = [(start, end) for start, end in spans if body[start:end].strip(_WHITESPACE)]
    if len(stripped) != len(spans) and (len(spans) > 1 or stripped):
        raise ValueError("it holds an empty member")
    return stripped


def _container(body, opening):
    """The children of ``body``, which must be one container opening with ``opening`` and nothing after it."""
    start = len(body) - len(body.lstrip(_WHITESPACE))
    if body[start:start + 1] != opening:
        raise ValueError("it is not a JSON %s" % ("object" if opening == b"{" else "array"))
    spans, end = _children(body, start)
    if body[end:].strip(_WHITESPACE):
        raise ValueError("there is more after its closing bracket")
    return [body[first:last].strip(_WHITESPACE) for first, last in spans]


def split_array(body):
    """The raw bytes of each element of the JSON array ``body`` (bytes), in order."""
    return _container(body, b"[")


def split_object(body):
    """``[(key, raw bytes of the value)]`` of the JSON object ``body`` (bytes), in order."""
    members = []
    for member in _container(body, b"{"):
        key = _STRING.match(member)
        rest = member[key.end():].lstrip(_WHITESPACE) if key else b""
        if not rest.startswith(b":") or not rest[1:].strip(_WHITESPACE):
            raise ValueError("a member of it is not a string key, a colon and a value")
        try:
            name = json.loads(key.group())
        except ValueError:
            raise ValueError("a key of it is not a valid JSON string") from None
        members.append((name, rest[1:].strip(_WHITESPACE)))
    return members
