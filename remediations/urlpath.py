"""A path under an http target's ``base_url``, judged as the server will read it.

Used by ``remediations.http`` (``http.request`` and ``http.check``): :func:`relative_path`
checks a path (the rule's literal at load, the rendered one per decision) after
percent-decoding, as a server resolves it, so ``%2e%2e`` is the ``..`` it means;
:func:`render_path` renders a templated path and refuses a label value that would make
more of the URL than the one segment or the one query value it stands in (a ``/``,
``?``, ``#``, a dot segment, a query parameter of its own, a control character), so the
query string and the shape of the path come from the rule alone; :func:`exact_url` is the
URL the plan shows and, unchanged (``yarl.URL(..., encoded=True)``), the one requested;
:func:`check_inside` keeps it under ``base_url``.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import quote, unquote, urlsplit

from rules.alert import Alert
from rules.templating import Template

_PCT_LONE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DECODE_ROUNDS = 4  # a value encoded more times than this is refused as undecidable
_PATH_SAFE = "/?=&%:@!$'()*+,;~-._"
_QUERY_FORBIDDEN = "&=;"  # in a query value, plain or encoded: another parameter (';' to some)


class PathRefused(ValueError):
    """A path (or a label's value in it) that would not mean what it says."""


def decoded(text: str) -> str:
    """``text`` percent-decoded until it no longer changes, as servers and proxies in front
    of one another may each decode it once; :class:`PathRefused` if that never settles."""
    for _ in range(_DECODE_ROUNDS):
        plain = unquote(text, errors="strict") if "%" in text else text
        if plain == text:
            return text
        text = plain
    raise PathRefused("is percent-encoded more times than any server decodes")


def _controls(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def relative_path(value: str) -> str:
    """A path under a base URL: one leading '/', and, percent-decoded, no '.' or '..' segment,
    no backslash, space or control character, no fragment."""
    if not value.startswith("/") or value.startswith("//"):
        raise PathRefused("path must start with a single '/'")
    if "#" in value:
        raise PathRefused("path must not carry a fragment ('#')")
    path, _, query = value.partition("?")
    try:
        plain = decoded(path)
        decoded(query)
    except (PathRefused, UnicodeDecodeError):
        raise PathRefused("path is percent-encoded in a way no server decodes alike") from None
    if "\\" in plain or any(c.isspace() or _controls(c) for c in plain) or _controls(decoded(query)):
        raise PathRefused("path must not contain backslashes, spaces or control characters, "
                          "percent-encoded or not")
    # Tomcat and Spring read "..;x" as "..": what precedes a ';' counts as the segment
    if any(segment.split(";")[0] in (".", "..") for segment in plain.split("/")):
        raise PathRefused("path must not contain '.' or '..' segments, percent-encoded or not")
    return value


def _label_value(value: str, ref: str, *, in_query: bool) -> None:
    """Refuse a label's ``value`` that would change the URL's shape where it lands."""
    where = "a query value" if in_query else "one path segment"
    try:
        plain = decoded(value)
    except (PathRefused, UnicodeDecodeError):
        raise PathRefused(f"{{{{ {ref} }}}} is {value[:80]!r}: not decodable as {where}") from None
    bad = sorted({c for c in plain if c in "/\\?#" or (in_query and c in _QUERY_FORBIDDEN)})
    if _controls(plain):
        bad.append("a control character")
    if not in_query and plain.split(";")[0] in (".", ".."):
        bad.append(f"the dot segment {plain!r}")
    if bad:
        raise PathRefused(f"{{{{ {ref} }}}} is {value[:80]!r}, which as {where} would carry "
                          f"{', '.join(map(repr, bad))} (percent-decoded): refused, so a label cannot "
                          "change the path or the query the rule wrote")


def render_path(template: Template, alert: Alert) -> str:
    """``template`` rendered for ``alert``, each label's value checked where it lands."""
    out: list[str] = []
    in_query = False
    for text, ref in template.pieces(alert):
        if ref is None:
            in_query = in_query or "?" in text
        else:
            _label_value(text, str(ref), in_query=in_query)
        out.append(text)
    return "".join(out)


def exact_url(base_url: str, path: str) -> str:
    """The URL requested, already encoded: what the plan shows is byte for byte what is sent.

    Only characters a URL cannot carry are encoded (spaces, non-ASCII, a lone '%'); the
    path's own '/', '?', '&', '=' and percent-escapes stay as the rule wrote them.
    """
    return base_url + quote(_PCT_LONE.sub("%25", path), safe=_PATH_SAFE)


def check_inside(base_url: str, url: str) -> str | None:
    """Why ``url`` (from :func:`exact_url`) is not under ``base_url`` as a server resolves it, or None."""
    parts, base = urlsplit(url), urlsplit(base_url)
    resolved = posixpath.normpath(decoded(parts.path) or "/")
    prefix = posixpath.normpath(base.path or "/")
    inside = resolved == prefix or resolved.startswith(prefix.rstrip("/") + "/")
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not inside:
        return f"{url} is outside {base_url}"
    return None
