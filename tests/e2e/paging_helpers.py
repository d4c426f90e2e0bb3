"""Real receivers for pages: an SMTP server (aiosmtpd) and an HTTP webhook receiver (Starlette under uvicorn), both on
loopback ports started by the test. The receiver can be told to fail, hang or answer slowly, per hook."""

from __future__ import annotations

import asyncio
import contextlib
import email
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.e2e.helpers_server import running_server


@dataclass
class Hit:
    hook: str
    key: str | None
    body: dict[str, Any]
    query: dict[str, str]
    at: float


@dataclass
class Receiver:
    """What each hook answers next: a list of plans consumed in order (``"ok"``, ``"fail"`` = 503, ``"bad"`` = 400,
    ``"hang"`` = wait until released), then ``ok``."""

    plans: dict[str, list[str]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""

    def url(self, hook: str) -> str:
        return f"{self.base_url}/hook/{hook}"

    def of(self, hook: str) -> list[Hit]:
        return [h for h in self.hits if h.hook == hook]

    async def handle(self, request: Request) -> Response:
        hook = request.path_params["hook"]
        hit = Hit(hook, request.headers.get("idempotency-key"), await request.json(), dict(request.query_params),
                  time.time())
        self.hits.append(hit)
        plan = self.plans.get(hook) or []
        step = plan.pop(0) if plan else "ok"
        if step == "hang":
            await self.release.wait()
            return JSONResponse({"late": True})
        if step == "fail":
            return JSONResponse({"error": "busy"}, status_code=503)
        if step == "bad":
            return JSONResponse({"error": "no such robot"}, status_code=400)
        return JSONResponse({"ok": True})


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook/{hook}", receiver.handle, methods=["POST"])])
    async with running_server(app) as base:
        receiver.base_url = base
        try:
            yield receiver
        finally:
            receiver.release.set()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[str | None] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content))
        self.logins.append(session.auth_data if session.authenticated else None)
        self.tls.append(session.ssl is not None)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl), to be trusted by pointing SSL_CERT_FILE at it."""
    cert, key = folder / "smtp.crt", folder / "smtp.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@contextlib.contextmanager
def smtp_server(login: tuple[str, str] | None = None,
                tls: tuple[Path, Path] | None = None) -> Iterator[tuple[Mailbox, int]]:
    """With ``login``, the server offers AUTH (over plain text: no certificate on loopback) and refuses any other
    credentials; each message records who logged in to send it (``Mailbox.logins``)."""
    mailbox = Mailbox()
    port = free_port()
    extra: dict[str, Any] = {}
    if login is not None:

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == login
            return AuthResult(success=ok, handled=False, auth_data=data.login.decode() if ok else None)

        extra = {"authenticator": authenticator, "auth_require_tls": False}
    if tls is not None:  # STARTTLS offered and required before MAIL
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        extra |= {"tls_context": context, "require_starttls": True}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def body_text(msg: Message) -> str:
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(msg.get_content_charset() or "utf-8")
