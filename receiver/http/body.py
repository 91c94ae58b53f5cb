"""Reading a request's body whole: only encodings we decode ourselves, within a size and a time.

Called by ``receiver.http.middlewares.screen`` before any handler, which then reads the
decoded bytes with :func:`body_of`. aiohttp's own decompression is off
(``handler_args={"auto_decompress": False}`` in ``receiver.http.app``): it let a truncated
gzip through as a shorter body and failed a garbled one as an error no handler caught, so
bodies are decoded here, all of the stream or nothing. A body that is refused answers the
request instead (:class:`Refusal`), and most refusals close the connection: the rest of a
body that was not read, or not understood, cannot be told from the next request.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from receiver.decisions import Rejection

BODY = web.RequestKey("body", bytes)
_ENCODINGS = frozenset({"", "identity", "gzip", "deflate"})
_TRANSFER = frozenset({"", "chunked"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a body is not taken: the answer's status, reason and detail; ``close`` the connection."""

    status: int
    reason: Rejection
    detail: str
    close: bool = True


def body_of(request: web.Request) -> bytes:
    """The request's body as :func:`read_body` decoded it (empty when it had none)."""
    body: bytes = request.get(BODY, b"")
    return body


def _one(request: web.Request, header: str) -> str:
    values = request.headers.getall(header, [])
    return values[0].strip().lower() if len(values) == 1 else ", ".join(values).lower()


def _decode(raw: bytes, encoding: str, limit: int) -> bytes | Refusal:
    if encoding in ("", "identity"):
        return raw
    # gzip: the gzip wrapper; deflate: the zlib wrapper, or a bare stream as some clients send
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else \
        zlib.MAX_WBITS if raw[:1] and raw[0] & 0x0F == 8 else -zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        return Refusal(400, Rejection.INVALID_ENCODING, f"the body is not {encoding}: {exc}")
    if len(out) > limit:
        return Refusal(413, Rejection.TOO_LARGE, f"the body inflates to more than the limit of {limit} bytes")
    if not inflater.eof:
        return Refusal(400, Rejection.INVALID_ENCODING, f"the {encoding} body ends before its stream does")
    if inflater.unused_data:
        return Refusal(400, Rejection.INVALID_ENCODING,
                       f"{len(inflater.unused_data)} bytes follow the end of the {encoding} stream")
    return out


async def read_body(request: web.Request, *, limit: int, within: float) -> Refusal | None:
    """Read and decode the body into the request (:func:`body_of`), or say why not."""
    transfer = _one(request, "Transfer-Encoding")
    if transfer not in _TRANSFER:
        return Refusal(400, Rejection.INVALID_ENCODING,
                       f"Transfer-Encoding {transfer[:50]!r} is not supported: chunked, or none")
    encoding = _one(request, "Content-Encoding")
    if encoding not in _ENCODINGS:
        return Refusal(415, Rejection.UNSUPPORTED_MEDIA_TYPE,
                       f"Content-Encoding {encoding[:50]!r} is not supported: gzip, deflate or identity, "
                       "one of them")
    if request.content_type.startswith("multipart/"):
        return Refusal(415, Rejection.UNSUPPORTED_MEDIA_TYPE, "multipart bodies are not taken here")
    if request.content_length is not None and request.content_length > limit:
        return Refusal(413, Rejection.TOO_LARGE,
                       f"body of {request.content_length} bytes is over the limit of {limit}")
    try:
        if request.content.is_eof():  # all of it is in: read() does not wait, nothing to time
            raw = await request.read()
        else:
            async with asyncio.timeout(within):
                raw = await request.read()
    except TimeoutError:
        return Refusal(408, Rejection.REQUEST_TIMEOUT,
                       f"the body did not arrive within {within:g} s; nothing changed")
    except web.HTTPRequestEntityTooLarge:
        return Refusal(413, Rejection.TOO_LARGE, f"body is over the limit of {limit} bytes")
    except RequestPayloadError as exc:  # chunked framing aiohttp could not follow
        return Refusal(400, Rejection.INVALID_ENCODING, f"the body's framing is broken: {exc}"[:300])
    decoded = _decode(raw, encoding, limit)
    if isinstance(decoded, Refusal):
        return decoded
    request[BODY] = decoded
    return None
