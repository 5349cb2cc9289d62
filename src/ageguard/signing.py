"""Yoti signed requests: the one canonical-message function, shared by the verifier and the client.

``MESSAGE = METHOD + "&" + PATH_AND_QUERY`` + (``"&" + base64(body)`` when there is a body), signed with
RSASSA-PKCS1-v1_5 over SHA-256 and sent base64-encoded in ``X-Yoti-Auth-Digest`` (SPEC.md, "Authentication").
``PATH_AND_QUERY`` is the endpoint path after the client's base URL plus ``?`` and the raw query string.
A body of ``b""`` yields a trailing ``&`` (what the Go SDK signs); ``None`` means no body part at all.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PathAndQuery = str | bytes

#: Where the API lives on a server; the SDKs' base URL ends here, so what they sign is the path below it.
BASE_PATH = "/ai/v1"


def canonical_message(method: str, path_and_query: PathAndQuery, body: bytes | None) -> bytes:
    """The exact bytes a Yoti SDK signs for a request."""
    return _message(method, path_and_query, _body_part(body))


def _body_part(body: bytes | None) -> bytes:
    return b"" if body is None else b"&" + base64.b64encode(body)


def _message(method: str, path_and_query: PathAndQuery, body_part: bytes) -> bytes:
    target = path_and_query if isinstance(path_and_query, bytes) else path_and_query.encode("utf-8")
    return method.upper().encode("ascii") + b"&" + target + body_part


def load_private_key(pem: bytes | str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8, unencrypted): the file the Yoti SDKs read."""
    raw = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(raw, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key must be an RSA key")
    return key


def sign(
    private_key: rsa.RSAPrivateKey, method: str, path_and_query: PathAndQuery, body: bytes | None
) -> str:
    """The base64 ``X-Yoti-Auth-Digest`` value for a request."""
    signature = private_key.sign(
        canonical_message(method, path_and_query, body), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(signature).decode("ascii")


def decode_digest(digest: str) -> bytes | None:
    """The signature bytes of an ``X-Yoti-Auth-Digest`` header, or None when it is not base64."""
    text = digest.strip()
    if not text:
        return None
    try:
        signature = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return signature or None


def verify_message(public_key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def verify(
    public_key: rsa.RSAPublicKey,
    signature: bytes,
    method: str,
    path_and_query: PathAndQuery,
    body: bytes | None,
) -> bool:
    """Whether ``signature`` signs exactly this method, target and body."""
    return verify_message(public_key, signature, canonical_message(method, path_and_query, body))


def verify_any(
    public_key: rsa.RSAPublicKey,
    signature: bytes,
    method: str,
    targets: Iterable[PathAndQuery],
    bodies: Iterable[bytes | None],
) -> PathAndQuery | None:
    """The first target (and any of ``bodies``) that ``signature`` verifies for, or None."""
    # Each body is base64-encoded once, not once per target: for a 1 MB image that is most of the cost.
    body_parts = [_body_part(body) for body in bodies]
    for target in targets:
        for part in body_parts:
            if verify_message(public_key, signature, _message(method, target, part)):
                return target
    return None
