"""``remediator health``: does the local ``serve`` answer ``/health``? The image's HEALTHCHECK.

Registered by ``receiver.cli.main.build_parser``. The URL is ``--url``, else the one
``serve`` wrote to ``$REMEDIATOR_ENDPOINT_FILE`` once it listened
(``receiver.http.server.endpoint_file``: the configured listen address and scheme,
``--listen`` included), else ``http://127.0.0.1:9095``. HTTPS is checked without verifying
the certificate (a liveness probe on this host, not an identity check); when serve requires
client certificates (``tls.client_ca``) a TLS handshake cut for want of one counts as an
answer (the listener is up; this probe holds no client certificate). Exit 0 healthy, 1 not
(one line saying why).
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from receiver.http.server import endpoint_file

EXIT_OK, EXIT_UNHEALTHY = 0, 1
DEFAULT_URL = "http://127.0.0.1:9095"


def _target(args: argparse.Namespace) -> tuple[str, bool, str]:
    """(base URL, client certificate required, where the URL came from)."""
    if args.url:
        return str(args.url).rstrip("/"), False, "--url"
    path = endpoint_file()
    if path is None:
        return DEFAULT_URL, False, "the default"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["url"]).rstrip("/"), bool(data.get("client_cert")), str(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _Unhealthy(f"{path}: serve has not said where it listens ({exc})") from None


class _Unhealthy(Exception):
    pass


def _client_cert_refused(url: str, context: ssl.SSLContext, timeout: float) -> bool:
    """Whether a TLS server refuses us for want of a client certificate (TLS 1.2, so the
    refusal comes in the handshake: an alert, or the connection cut mid-handshake)."""
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # the server's CertificateRequest comes in the handshake
    parts = urllib.parse.urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 443)
    try:
        with socket.create_connection(address, timeout=timeout) as raw, context.wrap_socket(raw) as tls:
            tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            tls.recv(1)
    except ssl.SSLEOFError:
        return True  # the handshake began (our hello was read) and was cut for want of a certificate
    except ssl.SSLError as exc:
        return "CERTIFICATE_REQUIRED" in str(exc).upper().replace(" ", "_")
    except OSError:
        return False
    return False


def probe(url: str, *, client_cert: bool, timeout: float) -> str:
    """What ``GET {url}/health`` answered, or raise :class:`_Unhealthy` saying why not."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if client_cert and url.startswith("https://"):
        if _client_cert_refused(url, context, timeout):
            return f"{url}: the TLS listener answers (it requires a client certificate)"
        raise _Unhealthy(f"{url}: no TLS listener asking for a client certificate answers")
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout, context=context) as resp:  # noqa: S310
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        raise _Unhealthy(f"{url}/health answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _Unhealthy(f"{url}/health: {getattr(exc, 'reason', exc)}") from None
    if status != 200:
        raise _Unhealthy(f"{url}/health answered {status}")
    return f"{url}/health: ok"


def _health(args: argparse.Namespace) -> int:
    try:
        url, client_cert, _source = _target(args)
        print(probe(url, client_cert=client_cert, timeout=args.timeout))
    except _Unhealthy as exc:
        print(f"remediator: unhealthy: {exc}")
        return EXIT_UNHEALTHY
    return EXIT_OK


def add_health_command(sub: Any) -> None:
    health = sub.add_parser("health", help="does the local serve answer /health (the image's HEALTHCHECK)")
    health.add_argument("--url", help="base URL of serve (default: where serve said it listens, "
                                      "$REMEDIATOR_ENDPOINT_FILE, else http://127.0.0.1:9095)")
    health.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    health.set_defaults(func=_health)
