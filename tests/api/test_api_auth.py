"""Yoti signed-request verification: every SDK's variant accepted, every failure its documented code."""

from __future__ import annotations

import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tests_api_helpers import BODY, assert_error

from ageguard import signing
from ageguard.api.auth import Verifier, check_timestamp, target_suffixes
from ageguard.errors import CATALOGUE, AgeGuardError
from ageguard.hub.keys import der_of


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
    assert list(target_suffixes(b"/ai/v1//age", b"a=1")) == [
        b"/ai/v1//age?a=1",
        b"/v1//age?a=1",
        b"//age?a=1",
        b"/age?a=1",
    ]
    assert list(target_suffixes(b"/x", b"")) == [b"/x"]


# ---------------------------------------------------------------------------------------- timestamps


NOW = 1_750_000_000.0


@pytest.mark.parametrize("value", [str(int(NOW * 1000)), str(int(NOW)), str(int(NOW * 1000) - 250_000)])
def test_fresh_timestamps(value: str) -> None:
    check_timestamp(value, NOW, 300, java_compat=False)


@pytest.mark.parametrize(
    "value", [None, "", "abc", "-5", "1.5e12", str(int(NOW * 1000) - 400_000), str(int(NOW) + 3600)]
)
def test_bad_or_stale_timestamps(value: str | None) -> None:
    with pytest.raises(AgeGuardError) as info:
        check_timestamp(value, NOW, 300, java_compat=False)
    assert info.value.code == "INVALID_TIMESTAMP"


def test_java_monotonic_only_in_compat_mode() -> None:
    monotonic_us = "86400000000"  # one day of uptime in microseconds: not epoch time at any scale
    with pytest.raises(AgeGuardError):
        check_timestamp(monotonic_us, NOW, 300, java_compat=False)
    check_timestamp(monotonic_us, NOW, 300, java_compat=True)
    # Compat mode does not open the window for stale epoch values.
    with pytest.raises(AgeGuardError):
        check_timestamp(str(int(NOW * 1000) - 3_600_000), NOW, 300, java_compat=True)


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
