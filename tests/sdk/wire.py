"""Requests built byte for byte as each official Yoti SDK builds them (../shared/SDK-WIRE.md), and a raw
HTTP/1.1 client that sends them as built: the request-target, header names and order, body bytes and
``Expect: 100-continue`` exactly as given, nothing re-encoded.

Signing is done here with ``cryptography`` directly (not with ``ageguard.signing``), so a mistake shared by
the server and its own client cannot hide. Each request lists the ``quirks`` it carries: the ways a server
stricter than AgeGuard would refuse it (tests/sdk/test_sdk_matrix.py shows each one does).
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KINDS = ("main", "checkout", "secure", "empty")

# -- quirks: how each request departs from the plainest signed request --------------------------------
# Each is a way a server stricter than AgeGuard would refuse the request (the description says how).
# Verifier quirks: test_sdk_matrix.py builds that stricter verifier and shows it refuses the request.
UPPER_NONCE = "upper-nonce"
NON_V4_NONCE = "non-v4-nonce"
SECONDS = "seconds"
MONOTONIC = "monotonic"
QUERY_ORDER = "query-order"
ENDPOINT_ONLY = "endpoint-only"
AFTER_BASE = "after-base"
DOUBLE_SLASH = "double-slash"
TRAILING_SLASH = "trailing-slash"
EMPTY_AMP = "empty-amp"
RAW_BODY = "raw-body"
APP_ID = "app-id"
SECURE_SPELLING = "secure-spelling"
# Wire facts: nothing in the verifier reads them; a server refusing them fails the live row.
AUTH_KEY = "auth-key"
NO_CONTENT_TYPE = "no-content-type"
FORM_CONTENT_TYPE = "form-content-type"
IMG_CONTENT_TYPE = "img-content-type"
EXPECT_100 = "expect-100"
NO_BODY = "no-body"
MISSPELLED_VERSION = "misspelled-version"

QUIRKS: dict[str, str] = {
    UPPER_NONCE: "an upper-case nonce (refused by a lower-case-only UUID check)",
    NON_V4_NONCE: "a nonce that is not a v4 UUID (refused by a v4-only check)",
    SECONDS: "a timestamp in seconds (refused by a milliseconds-only window)",
    MONOTONIC: "a timestamp that is not epoch time, System.nanoTime()/1000 (refused by any epoch window)",
    QUERY_ORDER: "query not in user, nonce, timestamp order (refused by a verifier that rebuilds the query)",
    ENDPOINT_ONLY: "signed path lacks the base URL's /ai/v1 (refused by verifying the full path only)",
    AFTER_BASE: "signed path lacks /self-checkout or a base's / (refused by stripping only /ai/v1)",
    DOUBLE_SLASH: "// in the path as sent and signed (refused by collapsing slashes before verifying)",
    TRAILING_SLASH: "a / before the ? (refused by trimming it before verifying, or by a redirect)",
    EMPTY_AMP: "an empty body signed with a trailing & (refused without that variant)",
    RAW_BODY: "body not compact JSON: PHP's \\/, Python's spaces (refused by verifying re-serialised JSON)",
    APP_ID: "no X-Yoti-Auth-Id, the signed appId parameter names the app (refused by header-only lookup)",
    SECURE_SPELLING: "secure=True or secure=1 (read as false by a true-only check)",
    AUTH_KEY: "an X-Yoti-Auth-Key header (old SDKs)",
    NO_CONTENT_TYPE: "no Content-Type header",
    FORM_CONTENT_TYPE: "Content-Type: application/x-www-form-urlencoded on a JSON body",
    IMG_CONTENT_TYPE: "Content-Type: application/img on a JSON body (the Go docs)",
    EXPECT_100: "Expect: 100-continue (the server must answer 100 before the body is sent)",
    NO_BODY: "no body and no Content-Length, yet the signature covers an empty body",
    MISSPELLED_VERSION: "the misspelled X-Yoti-Sdk-Verson header",
}
WIRE_FACTS = frozenset(
    {AUTH_KEY, NO_CONTENT_TYPE, FORM_CONTENT_TYPE, IMG_CONTENT_TYPE, EXPECT_100, NO_BODY, MISSPELLED_VERSION}
)


@dataclass(frozen=True)
class Client:
    """What a builder needs: the server's host:port, the application and the SDK's clock."""

    host: str
    sdk_id: str
    key: rsa.RSAPrivateKey
    image_b64: str
    now: Callable[[], float] = time.time


@dataclass(frozen=True)
class Wire:
    """One request as it goes on the wire."""

    sdk: str
    kind: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None  # None: nothing after the headers
    signed: bytes  # the message the SDK signed
    quirks: frozenset[str] = field(default_factory=frozenset)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


# -- the pieces every SDK shares -------------------------------------------------------------------------


def message(method: str, path_and_query: str, body: bytes | None) -> bytes:
    """``METHOD&PATHQ[&base64(body)]`` (SDK-WIRE section 1)."""
    out = f"{method}&{path_and_query}".encode()
    if body is not None:
        out += b"&" + base64.b64encode(body)
    return out


def digest(key: rsa.RSAPrivateKey, signed: bytes) -> str:
    return base64.b64encode(key.sign(signed, padding.PKCS1v15(), hashes.SHA256())).decode()


def auth_key(key: rsa.RSAPrivateKey) -> str:
    """What old SDKs send in X-Yoti-Auth-Key: base64 of the DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _hex_uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_not_v4() -> bytes:
    """16 random bytes that do not happen to look like a v4 UUID (C#'s Guid(bytes), Go's nonce)."""
    while True:
        raw = secrets.token_bytes(16)
        if raw.hex()[12] != "4":
            return raw


def go_nonce() -> str:
    """``fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])``: upper case, not v4."""
    return _hex_uuid(random_not_v4()).upper()


def csharp_nonce() -> str:
    """``new Guid(randomBytes).ToString("D")``: lower case, not v4 (its byte order does not matter here)."""
    return _hex_uuid(random_not_v4())


def uuid4() -> str:
    return str(uuid.uuid4())


_java_clock = itertools.count(5 * 86400 * 1_000_000 + 123_456, 7_919)  # 5 days of uptime, in microseconds


def java_timestamp() -> str:
    """``System.nanoTime() / 1000``: microseconds since the JVM host booted (fixed here: 5 days of uptime)."""
    return str(next(_java_clock))


def ms(c: Client) -> str:
    return str(int(c.now() * 1000))


def payload(c: Client, kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {"img": c.image_b64}
    if kind == "main":
        body["metadata"] = {"device": "mobile"}
    return body


def compact(obj: Any) -> bytes:
    """JSON.stringify, Jackson, Newtonsoft, encoding/json, Ruby's to_json (none escapes ``/``)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def php_json(obj: Any) -> bytes:
    """json_encode: compact, ``/`` escaped as ``\\/``."""
    return compact(obj).replace(b"/", b"\\/")


def _wire(
    sdk: str,
    kind: str,
    c: Client,
    *,
    url_path: str,
    signed_pathq: str,
    query: str,
    body: bytes | None,
    signed_body: bytes | None,
    headers: list[tuple[str, str]],
    digest_header: str = "X-Yoti-Auth-Digest",
    quirks: set[str],
    send_length: bool = True,
) -> Wire:
    signed = message("POST", signed_pathq, signed_body)
    if not signed_pathq.startswith("/ai/v1"):
        quirks = quirks | {ENDPOINT_ONLY}  # every SDK signs the endpoint after its base URL only
    full = [(name, value.replace("{DIGEST}", digest(c.key, signed))) for name, value in headers]
    if not any(name.lower() == digest_header.lower() for name, _ in full):
        full.append((digest_header, digest(c.key, signed)))
    if body is not None and send_length:
        full.append(("Content-Length", str(len(body))))
    return Wire(sdk, kind, "POST", f"{url_path}?{query}", tuple(full), body, signed, frozenset(quirks))


def _checkout_headers(sdk: str, kind: str) -> list[tuple[str, str]]:
    if kind != "checkout":
        return []
    return [("Terminal-Id", f"{sdk}-till-1"), ("Session-Id", str(uuid.uuid4()))]


# -- the seven SDKs ----------------------------------------------------------------------------------------


def node(c: Client, kind: str, version: str = "4.13.2") -> Wire:
    """Node RequestBuilder: base and endpoint joined with one ``/``; user params, nonce, timestamp;
    encodeURIComponent; JSON.stringify; Content-Type only with a payload (always in 3.7.x, with Auth-Key)."""
    old = version.startswith("3.")
    endpoint = "/self-checkout/age-antispoofing" if kind == "checkout" else "/age-antispoofing"
    params = [("secure", "true")] if kind == "secure" else []
    params += [("nonce", uuid4()), ("timestamp", ms(c))]
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='-_.!~*()')}" for k, v in params)
    body = compact(payload(c, kind))
    headers = [
        ("Host", c.host),
        ("Accept-Encoding", "gzip, deflate"),
        ("X-Yoti-Auth-Digest", "{DIGEST}"),
        ("X-Yoti-SDK", "Node"),
        ("X-Yoti-SDK-Version", f"Node-{version}"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("X-Yoti-Auth-Id", c.sdk_id),
        *_checkout_headers("node", kind),
    ]
    quirks: set[str] = set()
    if old:
        headers.insert(2, ("X-Yoti-Auth-Key", auth_key(c.key)))
        quirks.add(AUTH_KEY)
    headers.append(("Connection", "close"))
    return _wire(
        f"node-{version}", kind, c, url_path="/ai/v1" + endpoint, signed_pathq=f"{endpoint}?{query}",
        query=query, body=body, signed_body=body, headers=headers, quirks=quirks,
    )  # fmt: skip


def python(c: Client, kind: str, version: str = "2.14.6") -> Wire:
    """Python SignedRequest: raw concatenation (a base with a trailing ``/`` gives ``//``, signed single);
    urlencode (``True``); the caller's bytes (json.dumps: spaces); Content-Type forced; b"" signs ``&``."""
    old = version.startswith("2.9")
    quirks: set[str] = set()
    if kind == "checkout":
        base, endpoint = "/ai/v1/self-checkout/", "/age-antispoofing"
        quirks.add(AFTER_BASE)
    else:
        base, endpoint = "/ai/v1", "/age" if kind == "empty" else "/age-antispoofing"
    params = [("secure", "True")] if kind == "secure" else []
    if kind == "secure":
        quirks.add(SECURE_SPELLING)
    query = urlencode([*params, ("nonce", uuid4()), ("timestamp", ms(c))])
    if kind == "empty":
        body = b""
        quirks.add(EMPTY_AMP)
    else:
        body = json.dumps(payload(c, kind)).encode()
        quirks.add(RAW_BODY)
    headers = [
        ("Host", c.host),
        ("User-Agent", "python-requests/2.32.3"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Accept", "application/json"),
        ("Connection", "keep-alive"),
        ("X-Yoti-Auth-Digest", "{DIGEST}"),
        ("X-Yoti-SDK", "Python"),
        ("X-Yoti-SDK-Version", f"Python-{version}"),
        ("Content-Type", "application/json"),
        ("X-Yoti-Auth-Id", c.sdk_id),
        *_checkout_headers("python", kind),
    ]
    if old:
        headers.insert(5, ("X-Yoti-Auth-Key", auth_key(c.key)))
        quirks.add(AUTH_KEY)
    return _wire(
        f"python-{version}", kind, c, url_path=base + endpoint, signed_pathq=f"{endpoint}?{query}",
        query=query, body=body, signed_body=body, headers=headers, quirks=quirks,
    )  # fmt: skip


def java(c: Client, kind: str, version: str = "4.1.0") -> Wire:
    """Java YotiHttpRequestBuilder (4.x) / SignedRequestBuilder (2.6-3.12, same bytes): user params (String),
    nonce, ``System.nanoTime()/1000``; Content-Type forced to JSON; HttpURLConnection's own headers."""
    quirks = {MONOTONIC}
    if kind == "checkout":
        base, endpoint = "/ai/v1/self-checkout", "/age-antispoofing"
        quirks.add(AFTER_BASE)
    else:
        base, endpoint = "/ai/v1", "/age-antispoofing"
    params = [("secure", "true")] if kind == "secure" else []
    query = "&".join(
        f"{k}={quote(v, safe='')}" for k, v in [*params, ("nonce", uuid4()), ("timestamp", java_timestamp())]
    )
    body = compact(payload(c, kind))
    headers = [
        ("X-Yoti-Auth-Digest", "{DIGEST}"),
        ("X-Yoti-SDK", "Java"),
        ("X-Yoti-SDK-Version", f"Java-{version}"),
        ("Content-Type", "application/json"),
        ("X-Yoti-Auth-Id", c.sdk_id),
        *_checkout_headers("java", kind),
        ("User-Agent", "Java/17.0.12"),
        ("Host", c.host),
        ("Accept", "text/html, image/gif, image/jpeg, */*; q=0.2"),
        ("Connection", "keep-alive"),
    ]
    return _wire(
        f"java-{version}", kind, c, url_path=base + endpoint, signed_pathq=f"{endpoint}?{query}",
        query=query, body=body, signed_body=body, headers=headers, quirks=quirks,
    )  # fmt: skip


def php(c: Client, kind: str, version: str = "4.5.0") -> Wire:
    """PHP RequestBuilder: rtrim/ltrim join; http_build_query (``true`` → ``1``); json_encode (``\\/``);
    Guzzle (4.x) or curl with ``Expect: 100-continue``, Auth-Key and Content-Type always (2.3-2.4)."""
    old = version.startswith("2.")
    quirks = {RAW_BODY}
    endpoint = {"checkout": "/self-checkout/age-antispoofing", "empty": "/age"}.get(kind, "/age-antispoofing")
    params = [("secure", "1")] if kind == "secure" else []
    if kind == "secure":
        quirks.add(SECURE_SPELLING)
    query = urlencode([*params, ("nonce", uuid4()), ("timestamp", str(round(c.now() * 1000)))])
    if kind == "empty":
        body = b""
        quirks = {EMPTY_AMP}
    else:
        body = php_json(payload(c, kind))
    if old:  # curl directly: its Accept and Expect, the SDK's Auth-Key; WordPress plugin's SDK name
        headers = [
            ("Host", c.host),
            ("Accept", "*/*"),
            ("X-Yoti-Auth-Key", auth_key(c.key)),
            ("X-Yoti-Auth-Digest", "{DIGEST}"),
            ("X-Yoti-SDK", "WordPress"),
            ("X-Yoti-SDK-Version", f"WordPress-{version}"),
            ("Content-Type", "application/json"),
            ("X-Yoti-Auth-Id", c.sdk_id),
            ("Expect", "100-continue"),
        ]
        quirks |= {AUTH_KEY, EXPECT_100}
    else:
        headers = [
            ("Host", c.host),
            ("User-Agent", "GuzzleHttp/7"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("X-Yoti-Auth-Digest", "{DIGEST}"),
            ("X-Yoti-SDK", "PHP"),
            ("X-Yoti-SDK-Version", f"PHP-{version}"),
            ("X-Yoti-Auth-Id", c.sdk_id),
            *_checkout_headers("php", kind),
        ]
    return _wire(
        f"php-{version}", kind, c, url_path="/ai/v1" + endpoint, signed_pathq=f"{endpoint}?{query}",
        query=query, body=body, signed_body=body, headers=headers, quirks=quirks,
    )  # fmt: skip


def csharp(c: Client, kind: str, version: str = "3.18.0") -> Wire:
    """.NET RequestBuilder: user params, timestamp, then nonce, unescaped; Guid nonce (not v4); no
    Content-Type, no Accept; .NET Framework's ``Expect: 100-continue``; empty content signs ``&``."""
    quirks = {QUERY_ORDER, NON_V4_NONCE, NO_CONTENT_TYPE}
    if kind == "checkout":
        base, endpoint = (
            "/ai/v1/self-checkout/",
            "/age-antispoofing",
        )  # UriBuilder path + Uri(base, "age-...")
        quirks.add(AFTER_BASE)
    else:
        base, endpoint = "/ai/v1/", "/age" if kind == "empty" else "/age-antispoofing"
    params = [("secure", "true")] if kind == "secure" else []
    query = "&".join(f"{k}={v}" for k, v in [*params, ("timestamp", ms(c)), ("nonce", csharp_nonce())])
    body = b"" if kind == "empty" else compact(payload(c, kind))
    headers = [
        ("X-Yoti-Auth-Digest", "{DIGEST}"),
        ("X-Yoti-SDK", ".NET"),
        ("X-Yoti-SDK-Version", ".NET-3.17.0.0"),
        ("X-Yoti-Auth-Id", c.sdk_id),
        *_checkout_headers("csharp", kind),
        ("Host", c.host),
    ]
    if kind == "empty":
        quirks.add(EMPTY_AMP)
    else:
        headers.append(("Expect", "100-continue"))
        quirks.add(EXPECT_100)
    headers.append(("Connection", "Keep-Alive"))
    return _wire(
        f"csharp-{version}", kind, c, url_path=base + endpoint[1:], signed_pathq=f"{endpoint}?{query}",
        query=query, body=body, signed_body=body, headers=headers, quirks=quirks,
    )  # fmt: skip


def go(c: Client, kind: str, version: str = "3.15.0") -> Wire:
    """Go SignedRequest: raw concatenation; map-order query (here timestamp first), unescaped; upper-case
    non-v4 nonce; seconds x 1000; the docs' ``application/img`` headers; canonical SDK header names;
    a non-nil empty body signs ``&``. v2.6.0 sends X-Yoti-Auth-Key and no SDK headers; v2.7-2.10
    misspell X-Yoti-Sdk-Verson."""
    quirks = {UPPER_NONCE, NON_V4_NONCE, QUERY_ORDER, IMG_CONTENT_TYPE}
    endpoint = {"checkout": "/self-checkout/age-antispoofing", "empty": "/age"}.get(kind, "/age-antispoofing")
    params = [("secure", "true")] if kind == "secure" else []
    query = "&".join(
        f"{k}={v}" for k, v in [("timestamp", str(int(c.now()) * 1000)), *params, ("nonce", go_nonce())]
    )
    body = b"" if kind == "empty" else compact(payload(c, kind))
    if kind == "empty":
        quirks.add(EMPTY_AMP)
    headers = [("Host", c.host), ("User-Agent", "Go-http-client/1.1")]
    if body is not None:
        headers.append(("Content-Length", str(len(body))))
    headers += [
        ("Accept", "application/img"),
        ("Content-Type", "application/img"),
        ("X-Yoti-Auth-Id", c.sdk_id),  # set in the map literal: written as typed
        *_checkout_headers("go", kind),
        ("X-Yoti-Auth-Digest", "{DIGEST}"),
    ]
    if version == "2.6.0":
        headers.append(("X-Yoti-Auth-Key", auth_key(c.key)))
        quirks.add(AUTH_KEY)
    elif version.startswith("2."):
        headers += [("X-Yoti-Sdk", "Go"), ("X-Yoti-Sdk-Verson", version)]
        quirks.add(MISSPELLED_VERSION)
    else:
        headers += [("X-Yoti-Sdk", "Go"), ("X-Yoti-Sdk-Version", version)]
    headers.append(("Accept-Encoding", "gzip"))
    return _wire(
        f"go-{version}", kind, c, url_path="/ai/v1" + endpoint, signed_pathq=f"{endpoint}?{query}",
        query=query, body=body, signed_body=body, headers=headers, quirks=quirks, send_length=False,
    )  # fmt: skip


def ruby(c: Client, kind: str, version: str = "1.10.0") -> Wire:
    """Ruby Request builder (1.7+): ``"/#{endpoint}/".chomp('/')`` gives ``//age...``, sent and signed so;
    nonce, timestamp in seconds, then user params; net/http's capitalised names and its form Content-Type
    (net-http < 0.7; none from 0.7, the self-checkout request here); ``""`` signs ``&`` and sends nothing.
    Ruby <= 1.6 (no builder): ``/<endpoint>/?nonce=..&timestamp=..&appId=<sdk id>``, no X-Yoti-Auth-Id,
    X-Yoti-Auth-Key before 1.6.0."""
    old = not version.startswith("1.10")
    quirks = {SECONDS}
    seconds = str(int(c.now()))
    body: bytes | None
    if old:
        endpoint = "/age-antispoofing/"
        base = "/ai/v1"
        query = urlencode([("nonce", uuid4()), ("timestamp", seconds), ("appId", c.sdk_id)])
        quirks |= {TRAILING_SLASH, APP_ID, FORM_CONTENT_TYPE, QUERY_ORDER}
    else:
        endpoint = "//age" if kind == "empty" else "//age-antispoofing"
        base = "/ai/v1/self-checkout" if kind == "checkout" else "/ai/v1"
        params = [("secure", "true")] if kind == "secure" else []
        query = urlencode([("nonce", uuid4()), ("timestamp", seconds), *params])
        quirks.add(DOUBLE_SLASH)
        if kind == "checkout":
            quirks |= {AFTER_BASE, NO_CONTENT_TYPE}
        elif kind == "secure":
            quirks.add(QUERY_ORDER)
        if kind not in ("checkout", "empty"):
            quirks.add(FORM_CONTENT_TYPE)
    if kind == "empty":
        body, signed_body = None, b""
        quirks |= {EMPTY_AMP, NO_BODY, NO_CONTENT_TYPE}  # net/http adds its Content-Type only to a body
    else:
        body = signed_body = compact(payload(c, kind))
    headers = [
        ("X-Yoti-Auth-Digest", "{DIGEST}"),
        ("X-Yoti-Sdk", "Ruby"),
        ("X-Yoti-Sdk-Version", f"Ruby-{version}"),
    ]
    if old:
        if version < "1.6":
            headers.insert(0, ("X-Yoti-Auth-Key", auth_key(c.key)))
            quirks.add(AUTH_KEY)
    else:
        headers.append(("X-Yoti-Auth-Id", c.sdk_id))
    headers += [
        *_checkout_headers("ruby", kind),
        ("Accept-Encoding", "gzip;q=1.0,deflate;q=0.6,identity;q=0.3"),
        ("Accept", "*/*"),
        ("User-Agent", "Ruby"),
        ("Host", c.host),
    ]
    if FORM_CONTENT_TYPE in quirks and body is not None:
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    return _wire(
        f"ruby-{version}", kind, c, url_path=base + endpoint, signed_pathq=f"{endpoint}?{query}",
        query=query, body=body, signed_body=signed_body, headers=headers, quirks=quirks,
    )  # fmt: skip


Builder = Callable[[Client, str], Wire]


@dataclass(frozen=True)
class Row:
    """One SDK version: which of the request kinds it can send, and how it builds them."""

    name: str
    build: Builder
    kinds: tuple[str, ...]
    note: str = ""


def _v(fn: Callable[..., Wire], version: str) -> Builder:
    return lambda c, kind: fn(c, kind, version)


ALL = ("main", "checkout", "secure")
ROWS: tuple[Row, ...] = (
    Row("node-4.13.2", _v(node, "4.13.2"), ALL, "Node < 4.13.1 differs only in the uuid package: same bytes"),
    Row(
        "node-3.7.1",
        _v(node, "3.7.1"),
        ("main",),
        "first RequestBuilder: X-Yoti-Auth-Key, Content-Type always",
    ),
    Row("python-2.14.6", _v(python, "2.14.6"), (*ALL, "empty")),
    Row("python-2.9.0", _v(python, "2.9.0"), ("main",), "first builder: X-Yoti-Auth-Key"),
    Row("java-4.1.0", _v(java, "4.1.0"), ALL),
    Row("java-3.12.0", _v(java, "3.12.0"), ("main",), "SignedRequestBuilder 2.6-3.12: same string"),
    Row("php-4.5.0", _v(php, "4.5.0"), (*ALL, "empty"), "3.0-4.4 and 2.5 send the same bytes"),
    Row("php-2.4.0", _v(php, "2.4.0"), ("main",), "curl: Expect: 100-continue, X-Yoti-Auth-Key, WordPress"),
    Row("csharp-3.18.0", _v(csharp, "3.18.0"), (*ALL, "empty"), "3.0+ only; same order since 3.0.0"),
    Row("go-3.15.0", _v(go, "3.15.0"), (*ALL, "empty")),
    Row("go-2.10.0", _v(go, "2.10.0"), ("main",), "v2.7.0-v2.10.0: X-Yoti-Sdk-Verson"),
    Row("go-2.6.0", _v(go, "2.6.0"), ("main",), "first SignedRequest: X-Yoti-Auth-Key, no SDK headers"),
    Row("ruby-1.10.0", _v(ruby, "1.10.0"), (*ALL, "empty")),
    Row("ruby-1.6.0", _v(ruby, "1.6.0"), ("main",), "no builder: no custom headers or params"),
    Row("ruby-1.5.0", _v(ruby, "1.5.0"), ("main",), "no builder, and X-Yoti-Auth-Key"),
)


# -- a raw HTTP/1.1 client ---------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    continued: bool  # a 100 Continue came before the body was sent


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    return data


def send(host: str, port: int, wire: Wire, timeout: float = 120.0) -> Answer:
    """Send ``wire`` exactly as built; with ``Expect: 100-continue`` wait for the 100 before the body."""
    head = f"{wire.method} {wire.target} HTTP/1.1\r\n".encode("latin-1")
    head += b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in wire.headers) + b"\r\n"
    continued = False
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head)
        if wire.header("Expect") is not None and wire.body:
            sock.settimeout(10.0)  # .NET waits 350 ms, curl 1 s; a server that never answers fails here
            interim = _read_head(sock)
            assert interim.startswith(b"HTTP/1.1 100"), interim
            continued = True
            sock.settimeout(timeout)
        if wire.body:
            sock.sendall(wire.body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        raw = response.read()
    return Answer(response.status, json.loads(raw) if raw else {}, continued)
