"""Conformance matrix: every official Yoti SDK's requests, byte for byte, against a live ``ageguard serve``.

For each SDK at its newest version and each older variant in SDK-WIRE.md section 3 (``wire.ROWS``), the
request its builder makes (``main``: ``/age-antispoofing`` with an image; ``checkout``: its self-checkout
call with ``Terminal-Id``; ``secure``: the ``secure`` flag as that SDK spells it; ``empty``: an empty body,
where the SDK signs one with a trailing ``&``) is sent over a raw socket exactly as built, with the
server's default settings. Only the Node and Python SDKs can be installed here (tests/sdk/test_sdk_live.py
drives the real ones); the other five are matched from their source (tests/sdk/wire.py).

Each request declares its quirks (``wire.QUIRKS``). ``test_quirks_are_exactly_what_the_bytes_show`` checks
the declarations against the bytes both ways, so a row cannot lose the feature it stands for, and
``test_a_stricter_verifier_refuses`` builds, for every verifier quirk of every request, the stricter
verifier that quirk describes (lower-case-only nonces, milliseconds only, no Java timestamps, a rebuilt
query, collapsed slashes, ...) and shows it refuses that request. The wire-only quirks (Content-Type
variants, ``Expect: 100-continue``, X-Yoti-Auth-Key, no body) are refused by no verifier: the live row is
what fails if the server stops accepting them.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import wire as w
from api_images import face_jpeg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from live_server import LiveServer

from ageguard.api import auth
from ageguard.errors import AgeGuardError
from ageguard.hub import Hub, endpoint_name
from ageguard.hub.keys import der_of, generate_private_key
from ageguard.settings import Settings

CASES = [(row, kind) for row in w.ROWS for kind in row.kinds]
IDS = [f"{row.name}-{kind}" for row, kind in CASES]
PREDICTIONS = {"real", "fake", "undetermined"}


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def image_b64() -> str:
    return base64.b64encode(face_jpeg()).decode()


@pytest.fixture(scope="module")
def live_client(live: LiveServer, image_b64: str) -> w.Client:
    """The live server's embedded application, as an SDK configured with its SDK ID and key file."""
    assert live.key_path.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")  # Go, Java, .NET
    host = live.url.removeprefix("http://")
    return w.Client(host, live.sdk_id, _load_key(live.key_path), image_b64)


def _port(live: LiveServer) -> int:
    return int(live.url.rsplit(":", 1)[1])


def _assert_plausible(body: dict[str, object]) -> None:
    assert set(body) == {"age", "antispoofing"}, body
    age = body["age"]
    assert isinstance(age, dict) and set(age) == {"age", "st_dev"}, body
    # The test face is an adult (the astronaut); any sane estimate lies well inside this range.
    assert 18.0 < age["age"] < 80.0 and math.isfinite(age["age"]), body
    assert 0.0 < age["st_dev"] < 20.0, body
    spoof = body["antispoofing"]
    assert isinstance(spoof, dict) and spoof["prediction"] in PREDICTIONS, body


@pytest.mark.parametrize(("row", "kind"), CASES, ids=IDS)
def test_sdk_request_is_served(live: LiveServer, live_client: w.Client, row: w.Row, kind: str) -> None:
    request = row.build(live_client, kind)
    answer = w.send("127.0.0.1", _port(live), request)
    where = (request.sdk, kind, request.target[:90], answer.status, answer.body)
    if kind in ("main", "checkout"):
        assert answer.status == 200, where
        _assert_plausible(answer.body)
    elif kind == "secure":
        # Authenticated, and the flag read as true in this SDK's spelling: the body then needs a secure block.
        assert (answer.status, answer.body.get("error_code")) == (400, "SECURE_REQUEST_IS_EMPTY"), where
    else:
        # Authenticated (the empty body's signature verified); then the empty body itself is refused.
        assert (answer.status, answer.body.get("error_code")) == (400, "INVALID_BODY_ENCODING"), where
    if w.EXPECT_100 in request.quirks:
        assert answer.continued, where


def test_every_sdk_and_every_older_variant_is_a_row() -> None:
    names = {row.name for row in w.ROWS}
    for sdk in ("node", "python", "java", "php", "csharp", "go", "ruby"):
        newest = [row for row in w.ROWS if row.name.startswith(sdk + "-")][0]
        assert set(newest.kinds) >= {"main", "checkout", "secure"}, newest.name
    assert {"node-3.7.1", "python-2.9.0", "java-3.12.0", "php-2.4.0", "go-2.6.0", "go-2.10.0"} <= names
    assert {"ruby-1.5.0", "ruby-1.6.0"} <= names


def test_self_checkout_without_terminal_id_is_refused(live: LiveServer, live_client: w.Client) -> None:
    """The one header self-checkout needs: without it, AgeGuard's TERMINAL_ID_REQUIRED (docs/errors.md)."""
    built = w.go(live_client, "checkout")
    assert built.header("Terminal-Id")  # not signed: dropping it leaves the signature valid
    headers = tuple((k, v) for k, v in built.headers if k not in ("Terminal-Id", "Session-Id"))
    request = w.Wire(built.sdk, built.kind, built.method, built.target, headers, built.body, built.signed)
    answer = w.send("127.0.0.1", _port(live), request)
    assert (answer.status, answer.body["error_code"]) == (400, "TERMINAL_ID_REQUIRED"), answer


# -- the quirks, both ways ---------------------------------------------------------------------------------


def _params(request: w.Wire) -> list[tuple[str, str]]:
    return parse_qsl(request.query, keep_blank_values=True)


def _signed_path(request: w.Wire) -> str:
    return request.signed.split(b"&", 1)[1].split(b"?", 1)[0].decode()


def _shows(request: w.Wire, key: rsa.RSAPrivateKey) -> set[str]:
    """The quirks the request's bytes show, worked out from the bytes alone."""
    params = dict(_params(request))
    names = [name for name, _ in _params(request)]
    nonce, timestamp = params["nonce"], params["timestamp"]
    now = time.time()
    epoch = any(abs(int(timestamp) / scale - now) < 86400 for scale in (1, 1000))
    signed_path = _signed_path(request)
    content_type = request.header("Content-Type")
    body = request.body
    shown = {
        w.UPPER_NONCE: nonce != nonce.lower(),
        w.NON_V4_NONCE: nonce[14] != "4",
        w.SECONDS: epoch and len(timestamp) == 10,
        w.MONOTONIC: not epoch,
        w.QUERY_ORDER: names
        != [n for n in names if n not in ("nonce", "timestamp")] + ["nonce", "timestamp"],
        w.ENDPOINT_ONLY: not signed_path.startswith("/ai/v1"),
        w.AFTER_BASE: request.path != "/ai/v1" + signed_path,
        w.DOUBLE_SLASH: "//" in signed_path and "//" in request.path,
        w.TRAILING_SLASH: request.path.endswith("/") and signed_path.endswith("/"),
        w.EMPTY_AMP: not body and request.signed.endswith(b"&"),
        w.RAW_BODY: bool(body) and body != w.compact(json.loads(body or b"null")),
        w.APP_ID: request.header("X-Yoti-Auth-Id") is None and "appId" in params,
        w.SECURE_SPELLING: params.get("secure") in ("True", "1"),
        w.AUTH_KEY: request.header("X-Yoti-Auth-Key") == w.auth_key(key),
        w.NO_CONTENT_TYPE: content_type is None,
        w.FORM_CONTENT_TYPE: content_type == "application/x-www-form-urlencoded",
        w.IMG_CONTENT_TYPE: content_type == "application/img",
        w.EXPECT_100: (request.header("Expect") or "").lower() == "100-continue",
        w.NO_BODY: body is None and request.header("Content-Length") is None,
        w.MISSPELLED_VERSION: request.header("X-Yoti-Sdk-Verson") is not None,
    }
    return {quirk for quirk, present in shown.items() if present}


@pytest.fixture(scope="module")
def local() -> Iterator[tuple[w.Client, auth.Verifier]]:
    """An in-process verifier on its own Hub (default settings), and a client for one of its apps."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="ageguard-matrix-"))
    settings = Settings(home=folder / "home", database_url=f"sqlite:///{folder / 'hub.db'}")
    hub = Hub(settings.resolved_database_url)
    key = generate_private_key()
    app = hub.create_app("matrix", None, der_of(key.public_key()))
    try:
        yield (
            w.Client("127.0.0.1:8000", app.sdk_id, key, base64.b64encode(b"\xff\xd8 not an image").decode()),
            (auth.Verifier(settings, hub)),
        )
    finally:
        hub.close()


def _verify(verifier: auth.Verifier, request: w.Wire) -> auth.AuthContext:
    routed = re.sub("/+", "/", request.path).rstrip("/")
    raw_path, _, query = request.target.partition("?")
    return verifier.verify(
        method=request.method,
        raw_path=raw_path.encode(),
        query_string=query.encode(),
        headers={name.lower(): value for name, value in request.headers},
        body=request.body or b"",
        endpoint=endpoint_name(routed),
    )


@pytest.mark.parametrize(("row", "kind"), CASES, ids=IDS)
def test_quirks_are_exactly_what_the_bytes_show(
    local: tuple[w.Client, auth.Verifier], row: w.Row, kind: str
) -> None:
    client, verifier = local
    request = row.build(client, kind)
    assert request.quirks == _shows(request, client.key), sorted(request.quirks ^ _shows(request, client.key))
    assert request.quirks <= set(w.QUIRKS)
    ctx = _verify(verifier, request)  # and the unmodified verifier accepts it
    assert ctx.app.sdk_id == client.sdk_id
    assert ctx.secure is (kind == "secure")


def _requery(query: bytes) -> bytes:
    """The query rebuilt as user parameters, nonce, timestamp (what a "canonicalising" server signs)."""
    pairs = query.split(b"&")
    first = [p for p in pairs if not p.startswith((b"nonce=", b"timestamp="))]
    return b"&".join(
        first
        + [p for p in pairs if p.startswith(b"nonce=")]
        + [p for p in pairs if p.startswith(b"timestamp=")]
    )


def _stricter(quirk: str, verifier: auth.Verifier, monkeypatch: pytest.MonkeyPatch) -> auth.Verifier:
    """The verifier made stricter in the way ``quirk`` describes (wire.QUIRKS)."""
    suffixes = auth.target_suffixes
    if quirk == w.UPPER_NONCE:
        monkeypatch.setattr(
            auth, "_UUID", re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        )
    elif quirk == w.NON_V4_NONCE:
        v4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
        monkeypatch.setattr(auth, "_UUID", re.compile(v4, re.IGNORECASE))
    elif quirk == w.SECONDS:
        monkeypatch.setattr(auth, "_FRESH_SCALES", (1000,))
        return auth.Verifier(
            verifier.settings.model_copy(update={"java_timestamp_compat": False}), verifier.hub
        )
    elif quirk == w.MONOTONIC:
        return auth.Verifier(
            verifier.settings.model_copy(update={"java_timestamp_compat": False}), verifier.hub
        )
    elif quirk == w.QUERY_ORDER:
        monkeypatch.setattr(auth, "target_suffixes", lambda path, query: suffixes(path, _requery(query)))
    elif quirk == w.ENDPOINT_ONLY:
        monkeypatch.setattr(auth, "target_suffixes", lambda path, query: iter([path + b"?" + query]))
    elif quirk == w.AFTER_BASE:
        monkeypatch.setattr(
            auth, "target_suffixes", lambda path, query: iter([path.removeprefix(b"/ai/v1") + b"?" + query])
        )
    elif quirk == w.DOUBLE_SLASH:
        monkeypatch.setattr(
            auth, "target_suffixes", lambda path, query: suffixes(re.sub(b"/+", b"/", path), query)
        )
    elif quirk == w.TRAILING_SLASH:
        monkeypatch.setattr(auth, "target_suffixes", lambda path, query: suffixes(path.rstrip(b"/"), query))
    elif quirk == w.EMPTY_AMP:
        monkeypatch.setattr(auth, "body_variants", lambda body: (body,) if body else (None,))
    elif quirk == w.RAW_BODY:
        monkeypatch.setattr(auth, "body_variants", lambda body: (w.compact(json.loads(body)),))
    elif quirk == w.APP_ID:
        monkeypatch.setattr(auth, "SDK_ID_PARAMS", ())
    elif quirk == w.SECURE_SPELLING:
        monkeypatch.setattr(auth, "secure_flag", lambda params: params.get("secure") == "true")
    else:
        raise AssertionError(f"no stricter verifier for {quirk}")
    return verifier


REFUSED_WITH = {
    w.UPPER_NONCE: "INVALID_NONCE",
    w.NON_V4_NONCE: "INVALID_NONCE",
    w.SECONDS: "INVALID_TIMESTAMP",
    w.MONOTONIC: "INVALID_TIMESTAMP",
    w.APP_ID: "INVALID_X_YOTI_AUTH_ID",
    w.SECURE_SPELLING: None,  # not an error: the flag reads as false, so the secure check is skipped
}


@pytest.mark.parametrize(("row", "kind"), CASES, ids=IDS)
def test_a_stricter_verifier_refuses(
    local: tuple[w.Client, auth.Verifier], monkeypatch: pytest.MonkeyPatch, row: w.Row, kind: str
) -> None:
    """For each verifier quirk of the request: the server made stricter that way refuses it."""
    client, verifier = local
    quirks = sorted(row.build(client, kind).quirks - w.WIRE_FACTS)
    assert quirks, "every request departs from a plain verifier somewhere (at least ENDPOINT_ONLY)"
    for quirk in quirks:
        request = row.build(client, kind)  # a fresh nonce for each attempt
        with monkeypatch.context() as patch:
            strict = _stricter(quirk, verifier, patch)
            expected = REFUSED_WITH.get(quirk, "INVALID_SIGNATURE")
            if expected is None:
                assert _verify(strict, request).secure is False, quirk
                continue
            with pytest.raises(AgeGuardError) as info:
                _verify(strict, request)
            assert info.value.code == expected, (quirk, info.value.code)


def test_every_quirk_is_exercised(local: tuple[w.Client, auth.Verifier]) -> None:
    client, _ = local
    seen = set().union(*(row.build(client, kind).quirks for row, kind in CASES))
    assert seen == set(w.QUIRKS), sorted(set(w.QUIRKS) - seen)
