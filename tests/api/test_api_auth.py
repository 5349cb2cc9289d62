"""Yoti signed-request verification: every SDK's variant accepted, every failure its documented code."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tests_api_helpers import BODY, Api, assert_error

from ageguard import signing
from ageguard.api.auth import TimestampKind, Verifier, check_timestamp, target_suffixes
from ageguard.errors import CATALOGUE, AgeGuardError
from ageguard.hub import Hub
from ageguard.hub.keys import der_of
from ageguard.settings import Settings


def _q(nonce: str | None = None, ts: int | None = None) -> str:
    return f"nonce={nonce or uuid.uuid4()}&timestamp={ts if ts is not None else int(time.time() * 1000)}"


# ---------------------------------------------------------------------------------------- accepted


def test_python_and_node_style_accepted(api) -> None:
    r = api.send("/age", BODY)
    assert r.status_code == 200, r.text
    assert r.json() == {"age": {"age": 30.0, "st_dev": 2.5}}


def test_suffix_after_base_url_self_checkout(api) -> None:
    """A client whose base URL is .../ai/v1/self-checkout signs only /age-antispoofing."""
    query = _q()
    r = api.send(
        "/self-checkout/age-antispoofing",
        BODY,
        query=query,
        signed_target=f"/age-antispoofing?{query}",
        headers={"Terminal-Id": "till-1"},
    )
    assert r.status_code == 200, r.text


def test_full_path_signed(api) -> None:
    query = _q()
    r = api.send("/age", BODY, query=query, signed_target=f"/ai/v1/age?{query}")
    assert r.status_code == 200, r.text


def test_double_slash_kept_as_sent(api) -> None:
    """The Ruby SDK sends and signs //age...; it must verify as sent and route to /age."""
    query = _q()
    r = api.send("//age", BODY, query=query)
    assert r.status_code == 200, r.text
    # ...and collapsing the slashes in the signed message is not accepted.
    query = _q()
    r = api.send("//age", BODY, query=query, signed_target=f"/age?{query}X")
    assert_error(r, "INVALID_SIGNATURE")


def test_query_order_varies(api) -> None:
    """.NET puts timestamp before nonce; Go uses random order."""
    query = f"timestamp={int(time.time() * 1000)}&nonce={uuid.uuid4()}"
    assert api.send("/age", BODY, query=query).status_code == 200


def test_nonce_upper_case_and_timestamp_seconds(api) -> None:
    query = f"nonce={str(uuid.uuid4()).upper()}&timestamp={int(time.time())}"
    assert api.send("/age", BODY, query=query).status_code == 200


def test_percent_escaped_query_verified_raw(api) -> None:
    """The raw query is verified as received, escaping included (Node escapes, Go does not)."""
    query = f"secure=false&nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}&x=a%2Fb"
    assert api.send("/age", BODY, query=query).status_code == 200


def test_unknown_extra_query_and_fields_ignored(api) -> None:
    r = api.send("/age", {**BODY, "unknown": [1, 2], "metadata": {"device": "mobile", "x": 1}})
    assert r.status_code == 200, r.text


def test_empty_body_variants_go_trailing_ampersand(api_settings, api, private_key: rsa.RSAPrivateKey) -> None:
    verifier = Verifier(api_settings, api.hub)
    for signed_body in (None, b""):
        query = _q().encode()
        digest = signing.sign(private_key, "POST", b"/age?" + query, signed_body)
        ctx = verifier.verify(
            method="POST",
            raw_path=b"/ai/v1/age",
            query_string=query,
            headers={"x-yoti-auth-id": api.sdk_id, "x-yoti-auth-digest": digest},
            body=b"",
            endpoint="age",
        )
        assert ctx.signed_target == b"/age?" + query


def test_target_suffixes() -> None:
    # What the SDKs sign (the path below the base URL) first: each try hashes the whole body.
    assert list(target_suffixes(b"/ai/v1//age", b"a=1")) == [
        b"//age?a=1",
        b"/ai/v1//age?a=1",
        b"/v1//age?a=1",
        b"/age?a=1",
    ]
    assert list(target_suffixes(b"/ai/v1/self-checkout/age", b"")) == [
        b"/self-checkout/age",
        b"/ai/v1/self-checkout/age",
        b"/v1/self-checkout/age",
        b"/age",
    ]
    assert list(target_suffixes(b"/x", b"")) == [b"/x"]
    assert list(target_suffixes(b"/ai/v1", b"")) == [b"/ai/v1", b"/v1"]


# ---------------------------------------------------------------------------------------- timestamps


NOW = 1_750_000_000.0


@pytest.mark.parametrize("value", [str(int(NOW * 1000)), str(int(NOW)), str(int(NOW * 1000) - 250_000)])
def test_fresh_timestamps(value: str) -> None:
    assert check_timestamp(value, NOW, 300, java_compat=False) is TimestampKind.EPOCH


@pytest.mark.parametrize(
    "value", [None, "", "abc", "-5", "1.5e12", str(int(NOW * 1000) - 400_000), str(int(NOW) + 3600)]
)
def test_bad_or_stale_timestamps(value: str | None) -> None:
    with pytest.raises(AgeGuardError) as info:
        check_timestamp(value, NOW, 300, java_compat=False)
    assert info.value.code == "INVALID_TIMESTAMP"


#: Java's System.nanoTime()/1000: the SDK-WIRE capture (1502 s of uptime) and five days of uptime.
JAVA_TIMESTAMPS = ["1502261476", "432000000000"]


@pytest.mark.parametrize("monotonic_us", JAVA_TIMESTAMPS)
def test_java_monotonic_accepted_by_default_refused_in_strict_mode(monotonic_us: str) -> None:
    assert Settings().java_timestamp_compat is True
    assert check_timestamp(monotonic_us, NOW, 300, java_compat=True) is TimestampKind.MONOTONIC
    with pytest.raises(AgeGuardError) as info:
        check_timestamp(monotonic_us, NOW, 300, java_compat=False)
    assert info.value.code == "INVALID_TIMESTAMP"


@pytest.mark.parametrize("age_s", [301, 3600, 86400, 29 * 86400])
@pytest.mark.parametrize("scale", [1, 1000, 1_000_000])
def test_stale_epoch_values_refused_within_the_lookback(age_s: int, scale: int) -> None:
    """A replayed epoch-time request reads as stale, not as Java, for the whole look-back (30 days)."""
    with pytest.raises(AgeGuardError) as info:
        check_timestamp(str(int((NOW - age_s) * scale)), NOW, 300, java_compat=True)
    assert info.value.code == "INVALID_TIMESTAMP"


def test_values_outside_the_lookback_are_not_epoch_time() -> None:
    # An epoch value further ahead than the window, or older than the look-back, is not one a fresh
    # request could have carried: it is taken for a monotonic clock (and its nonce kept 30 days).
    for value in (int(NOW * 1000) + 600_000, int((NOW - 31 * 86400) * 1000)):
        assert check_timestamp(str(value), NOW, 300, java_compat=True) is TimestampKind.MONOTONIC
    assert check_timestamp(str(int(NOW * 1000) - 3_600_000), NOW, 300, True, 1800) is TimestampKind.MONOTONIC


def _move_clock(api: Api, when: float) -> None:
    verifier: Verifier = api.client.app.state.service.verifier  # type: ignore[attr-defined]
    verifier.clock = lambda: when


def test_java_request_accepted_by_default_and_refused_when_replayed(api: Api) -> None:
    """Default settings: a Java-signed request is 200; the same bytes 20 minutes (or 29 days) later: 401."""
    start = time.time()
    query = f"nonce={uuid.uuid4()}&timestamp={JAVA_TIMESTAMPS[0]}"
    first = api.send("/age-antispoofing", BODY, query=query)
    assert first.status_code == 200, first.text
    for later in (20 * 60, 29 * 86400):
        _move_clock(api, start + later)
        assert_error(api.send("/age-antispoofing", BODY, query=query), "INVALID_NONCE")
    # The nonce is kept for nonce_retention_s, not nonce_ttl_s.
    assert api.settings.nonce_retention_s == 30 * 86400


def test_epoch_request_replayed_after_its_window_is_a_stale_timestamp(api: Api) -> None:
    start = time.time()
    query = f"nonce={uuid.uuid4()}&timestamp={int(start * 1000)}"
    assert api.send("/age", BODY, query=query).status_code == 200
    _move_clock(api, start + 60)
    assert_error(api.send("/age", BODY, query=query), "INVALID_NONCE")  # within its window: the nonce
    for later in (20 * 60, 29 * 86400):  # its nonce is purged by then; the timestamp refuses it
        _move_clock(api, start + later)
        assert_error(api.send("/age", BODY, query=query), "INVALID_TIMESTAMP")


def test_java_request_refused_in_strict_mode(tmp_path: Path, private_key: rsa.RSAPrivateKey) -> None:
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'hub.db'}", java_timestamp_compat=False
    )
    with Hub(settings.resolved_database_url) as hub:
        app = hub.create_app("strict", None, der_of(private_key.public_key()))
        query = f"nonce={uuid.uuid4()}&timestamp={JAVA_TIMESTAMPS[1]}".encode()
        digest = signing.sign(private_key, "POST", b"/age?" + query, b"{}")
        with pytest.raises(AgeGuardError) as info:
            Verifier(settings, hub).verify(
                method="POST",
                raw_path=b"/ai/v1/age",
                query_string=query,
                headers={"x-yoti-auth-id": app.sdk_id, "x-yoti-auth-digest": digest},
                body=b"{}",
                endpoint="age",
            )
    assert info.value.code == "INVALID_TIMESTAMP"


def test_nonce_ttl_per_timestamp_kind(api_settings: Settings, api: Api) -> None:
    verifier = Verifier(api_settings, api.hub)
    assert verifier.nonce_ttl_s(TimestampKind.EPOCH) == 900
    assert verifier.nonce_ttl_s(TimestampKind.MONOTONIC) == 30 * 86400
    wide = api_settings.model_copy(update={"timestamp_window_s": 1200})
    assert Verifier(wide, api.hub).nonce_ttl_s(TimestampKind.EPOCH) == 2400  # outlives its freshness


def test_app_id_query_parameter_names_the_app_without_the_header(api: Api) -> None:
    """Ruby <= 1.6 sends no X-Yoti-Auth-Id; its signed appId parameter names the application."""
    verifier = Verifier(api.settings, api.hub)
    for sdk_id, code in ((api.sdk_id, None), ("not-a-uuid", "INVALID_X_YOTI_AUTH_ID")):
        query = f"nonce={uuid.uuid4()}&timestamp={int(time.time())}&appId={sdk_id}".encode()
        digest = signing.sign(api.key, "POST", b"/age/?" + query, b"{}")
        try:
            ctx = verifier.verify(
                method="POST",
                raw_path=b"/ai/v1/age/",
                query_string=query,
                headers={"x-yoti-auth-digest": digest},
                body=b"{}",
                endpoint="age",
            )
        except AgeGuardError as exc:
            assert exc.code == code
        else:
            assert code is None and ctx.app.sdk_id == api.sdk_id


# ---------------------------------------------------------------------------------------- rejected


def test_missing_and_malformed_headers(api) -> None:
    r = api.client.post(f"/ai/v1/age?{_q()}", json=BODY)
    assert_error(r, "INVALID_X_YOTI_AUTH_ID")
    r = api.client.post(f"/ai/v1/age?{_q()}", json=BODY, headers={"X-Yoti-Auth-Id": "not-a-uuid"})
    assert_error(r, "INVALID_X_YOTI_AUTH_ID")
    r = api.client.post(f"/ai/v1/age?{_q()}", json=BODY, headers={"X-Yoti-Auth-Id": api.sdk_id})
    assert_error(r, "INVALID_YOTI_AUTH_DIGEST")
    r = api.send("/age", BODY, headers={"X-Yoti-Auth-Digest": "%%% not base64 %%%"})
    assert_error(r, "INVALID_YOTI_AUTH_DIGEST")


def test_nonce_and_timestamp_missing_or_invalid(api) -> None:
    ts = int(time.time() * 1000)
    assert_error(api.send("/age", BODY, query=f"timestamp={ts}"), "INVALID_NONCE")
    assert_error(api.send("/age", BODY, query=f"nonce=abc&timestamp={ts}"), "INVALID_NONCE")
    assert_error(api.send("/age", BODY, query=f"nonce={uuid.uuid4()}"), "INVALID_TIMESTAMP")
    assert_error(api.send("/age", BODY, query=f"nonce={uuid.uuid4()}&timestamp=soon"), "INVALID_TIMESTAMP")
    assert_error(api.send("/age", BODY, query=_q(ts=ts - 3_600_000)), "INVALID_TIMESTAMP")


def test_app_not_found(api) -> None:
    assert_error(api.send("/age", BODY, sdk_id=str(uuid.uuid4())), "APP_NOT_FOUND")


def test_wrong_key(api, other_key: rsa.RSAPrivateKey) -> None:
    assert_error(api.send("/age", BODY, key=other_key), "INVALID_SIGNATURE")


def test_tampered_body_method_path_query(api) -> None:
    assert_error(api.send("/age", BODY, signed_body=b'{"img": "other"}'), "INVALID_SIGNATURE")
    assert_error(api.send("/age", BODY, signed_method="PUT"), "INVALID_SIGNATURE")
    query = _q()
    assert_error(
        api.send("/age", BODY, query=query, signed_target=f"/age-verify?{query}"), "INVALID_SIGNATURE"
    )
    assert_error(api.send("/age", BODY, query=query, signed_target=f"/age?{_q()}"), "INVALID_SIGNATURE")


def test_replayed_nonce(api) -> None:
    nonce = str(uuid.uuid4())
    assert api.send("/age", BODY, query=_q(nonce)).status_code == 200
    assert_error(api.send("/age", BODY, query=_q(nonce)), "INVALID_NONCE")
    assert_error(api.send("/age", BODY, query=_q(nonce.upper())), "INVALID_NONCE")


def test_failed_signature_does_not_spend_nonce(api, other_key: rsa.RSAPrivateKey) -> None:
    nonce = str(uuid.uuid4())
    assert_error(api.send("/age", BODY, query=_q(nonce), key=other_key), "INVALID_SIGNATURE")
    assert api.send("/age", BODY, query=_q(nonce)).status_code == 200


def test_disabled_app_and_suspended_org(api, private_key: rsa.RSAPrivateKey) -> None:
    api.hub.set_app_enabled(api.sdk_id, False)
    assert_error(api.send("/age", BODY), "DISABLED_APP_STATE")
    api.hub.set_app_enabled(api.sdk_id, True)
    api.hub.create_org("acme")
    other = api.hub.create_app("shop", "acme", der_of(private_key.public_key()))
    api.hub.set_org_status("acme", "suspended")
    assert_error(api.send("/age", BODY, sdk_id=other.sdk_id), "INVALID_ORG_STATUS")


def test_endpoint_not_allowed(api) -> None:
    api.hub.set_allowed_endpoints(api.sdk_id, ["age"])
    assert api.send("/age", BODY).status_code == 200
    assert_error(api.send("/antispoofing", BODY), "UNAUTHORIZED")
    assert_error(
        api.send("/self-checkout/age-antispoofing", BODY, headers={"Terminal-Id": "t"}), "UNAUTHORIZED"
    )


def test_every_auth_code_is_in_the_catalogue() -> None:
    for code in (
        "INVALID_X_YOTI_AUTH_ID",
        "APP_NOT_FOUND",
        "DISABLED_APP_STATE",
        "INVALID_ORG_STATUS",
        "INVALID_YOTI_AUTH_DIGEST",
        "INVALID_NONCE",
        "INVALID_TIMESTAMP",
        "INVALID_SIGNATURE",
        "UNAUTHORIZED",
    ):
        assert code in CATALOGUE
