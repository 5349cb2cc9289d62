"""Public keys of applications: accepted as PEM or DER, stored as DER SubjectPublicKeyInfo, RSA only."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ageguard.errors import AgeGuardError

#: Smallest RSA modulus accepted for an application key.
MIN_RSA_BITS = 2048


def load_rsa_public_key(data: bytes | str) -> rsa.RSAPublicKey:
    """Parse an RSA public key from PEM (``PUBLIC KEY`` or ``RSA PUBLIC KEY``) or DER bytes.

    Raises ``AgeGuardError("INVALID_PUBLIC_KEY")`` when empty and
    ``AgeGuardError("INVALID_PUBLIC_KEY_ENCODING")`` when not an RSA public key.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if not raw.strip():
        raise AgeGuardError("INVALID_PUBLIC_KEY")
    key: object
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw.strip())
        else:
            key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError) as exc:
        raise AgeGuardError(
            "INVALID_PUBLIC_KEY_ENCODING", "Failed to load public key: not a PEM or DER public key."
        ) from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd key types
        raise AgeGuardError("INVALID_PUBLIC_KEY_ENCODING", f"Failed to load public key: {exc}.") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise AgeGuardError("INVALID_PUBLIC_KEY_ENCODING", "Failed to load public key: the key must be RSA.")
    if key.key_size < MIN_RSA_BITS:
        raise AgeGuardError(
            "INVALID_PUBLIC_KEY_ENCODING",
            f"Failed to load public key: RSA keys must have at least {MIN_RSA_BITS} bits.",
        )
    return key


def public_key_der(data: bytes | str) -> bytes:
    """The DER SubjectPublicKeyInfo of a PEM or DER RSA public key (validated)."""
    key = load_rsa_public_key(data)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#1 PEM (``BEGIN RSA PRIVATE KEY``), unencrypted: the one form every official Yoti SDK loads
    (Go's ``x509.ParsePKCS1PrivateKey`` and the Java and .NET loaders refuse PKCS#8; SDK-WIRE.md)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_key_der_of_private_pem(data: bytes) -> bytes:
    """The DER public key of an unencrypted RSA private key in PKCS#1 or PKCS#8 PEM (validated).

    An operator may bring the key pair their SDK already uses; only its public part is kept.
    """
    try:
        key = serialization.load_pem_private_key(data.strip(), password=None)
    except (ValueError, TypeError) as exc:
        raise AgeGuardError(
            "INVALID_PUBLIC_KEY_ENCODING",
            "Failed to load key: not an unencrypted PKCS#1 or PKCS#8 private key.",
        ) from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd key types
        raise AgeGuardError("INVALID_PUBLIC_KEY_ENCODING", f"Failed to load key: {exc}.") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AgeGuardError("INVALID_PUBLIC_KEY_ENCODING", "Failed to load public key: the key must be RSA.")
    return public_key_der(der_of(key.public_key()))


def der_of(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
