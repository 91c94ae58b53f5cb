"""Counting what a JSON body wrote against what its one parse kept: a key given twice, without a second parse.

Called by ``receiver.flow.payload`` and ``receiver.flow.payload_fast``. A parser keeps one
value of a key given twice in one object, and parsers differ on which (RFC 7493), so
remediator refuses such a body; the parse itself does not say. Two counts tell, each
over valid JSON that the strict parse accepted:

- **pairs** (exact, ~4 µs per KB): the colons outside strings are the keys the text
  writes; the decoded objects hold as many keys unless one was given twice
  (:func:`pairs_in_text`, :func:`pairs_in_tree`).
- **quotes** (one byte count, with what validating counted anyway): every string the text
  writes, key or value, is two quote bytes, and a quote byte is nothing else but an
  escaped quote (``\\"``) in a string. Each escaped quote is a quote character in a decoded
  string, unless the text spells one ``\\u0022`` instead. A parse keeps every string the text
  writes unless a key was given twice (then that key, at least, is gone). So with ``Q``
  quote bytes, ``S`` strings in the tree and ``D`` quote characters in them: the text
  writes at most ``(Q - D) / 2`` strings when no ``\\u0022`` is there (at most ``Q / 2``
  always), and at least ``S``; when the bound is ``S``, no key was given twice
  (:func:`no_key_twice`). When it is not (a ``\\u0022``, or a key there twice), the pairs
  decide.
"""

from __future__ import annotations

from typing import Any

# All bytes but colons, quotes, backslashes and what may follow a backslash (so the escapes stay)
_NOT_MARKS = bytes(b for b in range(256) if b not in b':"\\/bfnrtu')
_UNICODE_QUOTE = b"\\u0022"  # a quote in a string, spelled without a quote byte


def pairs_in_text(body: bytes) -> int:
    """How many ``key: value`` pairs the valid JSON ``body`` writes: its colons outside strings."""
    # Only colons, quotes and escapes matter; escaped backslashes out first (left to right,
    # as JSON reads them), then escaped quotes: every quote left opens or closes a string.
    marks = body.translate(None, _NOT_MARKS).replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(marks.split(b'"')[::2]).count(b":")


def pairs_in_tree(tree: Any) -> int:
    """How many keys the decoded objects of ``tree`` hold (a key given twice counts once)."""
    count, stack = 0, [tree]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            count += len(node)
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return count


def strings_and_quotes(tree: Any) -> tuple[int, int]:
    """How many strings the decoded ``tree`` holds (every key, every value that is a string),
    and how many quote characters they hold in all."""
    strings = quotes = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str:
            strings += 1
            quotes += node.count('"')
        elif kind is dict:
            strings += len(node)
            quotes += "".join(node).count('"')
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
    return strings, quotes


def no_key_twice(body: bytes, tree: Any, strings: int, quotes: int) -> bool:
    """Whether no object of the valid JSON ``body`` has a key twice, where ``tree`` is its parse,
    holding ``strings`` strings with ``quotes`` quote characters (as :func:`strings_and_quotes`
    counts them: a count too high would hide a key given twice)."""
    written = body.count(b'"')
    if written == 2 * strings:
        return True
    if written - quotes == 2 * strings and _UNICODE_QUOTE not in body:
        return True
    return pairs_in_text(body) == pairs_in_tree(tree)
