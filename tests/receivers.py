"""Real local receivers for the outbound plugins' tests, on 127.0.0.1 with ephemeral ports.

:class:`HttpReceiver` records every request and answers from a script
(``receiver.script(Reply(500), Reply(200))``), then with its default reply.
:class:`SmtpReceiver` is an aiosmtpd server that collects the mail it gets.
:func:`closed_url` is an address where nothing listens.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, a body (a dict is sent as JSON), headers, a delay."""

    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """An HTTP server in a thread; use it as a context manager."""

    def __init__(self, default: Reply | None = None) -> None:
        self.requests: list[Received] = []
        self.default = default or Reply()
        self._replies: deque[Reply] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,))

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order, then with the default."""
        self._replies.extend(replies)

    def _answer(self, request: Received) -> Reply:
        self.requests.append(request)
        return self._replies.popleft() if self._replies else self.default

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self.rfile.read(length),
            )
            reply = receiver._answer(request)
            time.sleep(reply.delay)
            body = reply.body
            if isinstance(body, dict):
                body = json.dumps(body)
            payload = body.encode() if isinstance(body, str) else body
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return cast(int, sock.getsockname()[1])


def closed_url(path: str = "/") -> str:
    """An http URL on 127.0.0.1 where connections are refused."""
    return f"http://127.0.0.1:{free_port()}{path}"


@dataclass(frozen=True)
class Mail:
    """One message an SMTP receiver accepted: the envelope and the parsed message."""

    sender: str
    recipients: list[str]
    message: EmailMessage


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1 that collects mail; use it as a context manager.

    Keyword arguments go to aiosmtpd's ``Controller`` (e.g. ``authenticator``).
    """

    def __init__(self, **controller: Any) -> None:
        self.mail: list[Mail] = []
        self.port = free_port()
        controller.setdefault("server_hostname", "localhost")  # skips a DNS look-up
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **controller)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.mail.append(
            Mail(envelope.mail_from, list(envelope.rcpt_tos), cast(EmailMessage, message))
        )
        return "250 OK"

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()
