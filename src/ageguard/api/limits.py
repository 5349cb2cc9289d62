"""Request-body size limit, enforced before the body is read (SPEC: 413 ``PAYLOAD_TOO_LARGE``).

A declared ``Content-Length`` over the limit is answered at once, without reading a byte of the body (the
server discards what the client still sends).
A chunked body (no length) is counted as it streams; the first chunk past the limit stops the read.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ageguard.errors import AgeGuardError


class BodyTooLarge(AgeGuardError):
    def __init__(self) -> None:
        super().__init__("PAYLOAD_TOO_LARGE")


async def send_error(
    send: Send, error: AgeGuardError, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(error.to_body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None and declared > self.max_body_bytes:
            # Answer now, without reading the body. The connection is not closed: the server discards the
            # rest of the body as it arrives (framed by its Content-Length), so a client still uploading
            # reads the 413 instead of a connection reset; the keep-alive timeout bounds the discarding.
            await send_error(send, BodyTooLarge())
            return

        limit = self.max_body_bytes
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counted_receive, send)
