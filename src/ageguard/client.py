"""A Python client for an AgeGuard (or Yoti AI Services) server, signing requests as the official SDKs do.

    client = AgeGuardClient("http://127.0.0.1:8000", sdk_id, Path("key.pem").read_bytes())
    result = client.age(Path("photo.jpg").read_bytes())        # AgeResult(age=..., st_dev=...)

Each request gets a fresh ``nonce`` (uuid4) and ``timestamp`` (ms since the epoch) and is signed with
:func:`ageguard.signing.sign` over the endpoint path after the base URL, exactly like the Yoti SDKs.
Errors come back as :class:`AgeGuardAPIError` with the catalogue code, message and HTTP status.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from ageguard import signing

DEFAULT_URL = "http://127.0.0.1:8000"
API_PATH = signing.BASE_PATH

#: Written by ``ageguard serve`` when it creates the embedded default application.
LOCAL_APP_KEY = "local-app.pem"
LOCAL_APP_INFO = "local-app.json"

Operator = Literal["OVER", "UNDER"]


@dataclass(frozen=True, slots=True)
class AgeResult:
    age: float
    st_dev: float


@dataclass(frozen=True, slots=True)
class AntispoofingResult:
    prediction: str  # "real" | "fake" | "undetermined"


@dataclass(frozen=True, slots=True)
class AgeAntispoofingResult:
    age: AgeResult
    antispoofing: AntispoofingResult


@dataclass(frozen=True, slots=True)
class AgeVerifyResult:
    age_check: str  # "pass" | "fail"


@dataclass(frozen=True, slots=True)
class AgeAntispoofingVerifyResult:
    age_check: str
    antispoofing: AntispoofingResult


class AgeGuardAPIError(Exception):
    """An error answer: ``code`` from the catalogue (docs/errors.md), its message and the HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class LocalApp:
    """The embedded default application ``ageguard serve`` creates on first start."""

    sdk_id: str
    key_path: Path
    url: str | None = None


def load_local_app(home: Path) -> LocalApp | None:
    info = home / LOCAL_APP_INFO
    if not info.is_file():
        return None
    data = json.loads(info.read_text())
    return LocalApp(
        sdk_id=data["sdk_id"],
        key_path=Path(data.get("key_path") or home / LOCAL_APP_KEY),
        url=data.get("url"),
    )


def api_base(url: str) -> str:
    """``http://host:port`` → ``http://host:port/ai/v1``; a URL with a path is kept as given."""
    url = url.rstrip("/")
    return url + API_PATH if urlsplit(url).path in ("", "/") else url


def _age(data: Any) -> AgeResult:
    return AgeResult(age=float(data["age"]), st_dev=float(data["st_dev"]))


def _antispoofing(data: Any) -> AntispoofingResult:
    return AntispoofingResult(prediction=str(data["prediction"]))


class AgeGuardClient:
    def __init__(
        self,
        base_url: str,
        sdk_id: str,
        private_key_pem: bytes | str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = api_base(base_url)
        self.sdk_id = sdk_id
        self._key = signing.load_private_key(private_key_pem)
        self._http = httpx.Client(timeout=timeout, transport=transport)

    # -- plumbing -------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgeGuardClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def request(
        self,
        method: str,
        endpoint: str,
        payload: dict[str, Any] | bytes | None = None,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """Send one signed request; return the decoded JSON body or raise :class:`AgeGuardAPIError`."""
        endpoint = "/" + endpoint.lstrip("/")
        query = [f"{name}={value}" for name, value in (params or {}).items()]
        query += [f"nonce={uuid.uuid4()}", f"timestamp={int(time.time() * 1000)}"]
        path_and_query = f"{endpoint}?{'&'.join(query)}"
        body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        sent = {
            "X-Yoti-Auth-Id": self.sdk_id,
            "X-Yoti-Auth-Digest": signing.sign(self._key, method, path_and_query, body),
            "Accept": "application/json",
        }
        if body is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        response = self._http.request(method, self.base_url + path_and_query, content=body, headers=sent)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200:
            if isinstance(data, dict) and "error_code" in data:
                raise AgeGuardAPIError(
                    str(data["error_code"]), str(data.get("error_message", "")), response.status_code
                )
            raise AgeGuardAPIError("UNEXPECTED_RESPONSE", response.text[:200], response.status_code)
        return data

    @staticmethod
    def _payload(image: bytes, **fields: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"img": base64.b64encode(image).decode("ascii")}
        for name, value in fields.items():
            if value is None:
                continue
            if name == "device":
                payload["metadata"] = {"device": value}
            else:
                payload[name] = value
        return payload

    # -- endpoints ------------------------------------------------------------------------------------

    def age(
        self, image: bytes, *, validation_level: str | None = None, device: str | None = None
    ) -> AgeResult:
        data = self.request(
            "POST", "/age", self._payload(image, img_validation_level=validation_level, device=device)
        )
        return _age(data["age"])

    def antispoofing(
        self, image: bytes, *, level_of_assurance: str | None = None, device: str | None = None
    ) -> AntispoofingResult:
        payload = self._payload(image, level_of_assurance=level_of_assurance, device=device)
        return _antispoofing(self.request("POST", "/antispoofing", payload)["antispoofing"])

    def age_antispoofing(
        self, image: bytes, *, level_of_assurance: str | None = None, device: str | None = None
    ) -> AgeAntispoofingResult:
        payload = self._payload(image, level_of_assurance=level_of_assurance, device=device)
        data = self.request("POST", "/age-antispoofing", payload)
        return AgeAntispoofingResult(age=_age(data["age"]), antispoofing=_antispoofing(data["antispoofing"]))

    def age_verify(
        self,
        image: bytes,
        threshold: int,
        operator: Operator = "OVER",
        *,
        validation_level: str | None = None,
        device: str | None = None,
    ) -> AgeVerifyResult:
        payload = self._payload(
            image,
            threshold=threshold,
            operator=operator,
            img_validation_level=validation_level,
            device=device,
        )
        return AgeVerifyResult(age_check=str(self.request("POST", "/age-verify", payload)["age_check"]))

    def age_antispoofing_verify(
        self,
        image: bytes,
        threshold: int,
        operator: Operator = "OVER",
        *,
        level_of_assurance: str | None = None,
        device: str | None = None,
    ) -> AgeAntispoofingVerifyResult:
        payload = self._payload(
            image,
            threshold=threshold,
            operator=operator,
            level_of_assurance=level_of_assurance,
            device=device,
        )
        data = self.request("POST", "/age-antispoofing-verify", payload)
        return AgeAntispoofingVerifyResult(
            age_check=str(data["age"]["age_check"]), antispoofing=_antispoofing(data["antispoofing"])
        )

    def self_checkout(
        self, image: bytes, terminal_id: str, *, session_id: str | None = None
    ) -> AgeAntispoofingResult:
        headers = {"Terminal-Id": terminal_id}
        if session_id:
            headers["Session-Id"] = session_id
        data = self.request("POST", "/self-checkout/age-antispoofing", self._payload(image), headers=headers)
        return AgeAntispoofingResult(age=_age(data["age"]), antispoofing=_antispoofing(data["antispoofing"]))
