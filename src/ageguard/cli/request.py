"""``ageguard request ENDPOINT IMAGE``: one signed request to a server, by default the local one.

With no flags it uses the embedded default application that ``ageguard serve`` created
(``$AGEGUARD_HOME/local-app.json`` and ``local-app.pem``) and the URL that server printed.
Prints the JSON answer on stdout; an error answer is printed too (with its status) and exits 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ageguard.cli._app import app
from ageguard.client import DEFAULT_URL, LOCAL_APP_KEY, AgeGuardAPIError, AgeGuardClient, load_local_app
from ageguard.settings import get_settings

_ENDPOINTS = {
    "age": "/age",
    "antispoofing": "/antispoofing",
    "age-antispoofing": "/age-antispoofing",
    "age-verify": "/age-verify",
    "age-antispoofing-verify": "/age-antispoofing-verify",
    "self-checkout": "/self-checkout/age-antispoofing",
    "self-checkout/age-antispoofing": "/self-checkout/age-antispoofing",
}


@app.command("request")
def request_command(
    endpoint: Annotated[str, typer.Argument(help=f"One of: {', '.join(list(_ENDPOINTS)[:6])}.")],
    image: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JPEG or PNG file.")
    ],
    threshold: Annotated[int | None, typer.Option(help="Age threshold (verify endpoints).")] = None,
    operator: Annotated[str, typer.Option(help="OVER or UNDER (verify endpoints).")] = "OVER",
    url: Annotated[str | None, typer.Option(help="Server URL (default: the local server).")] = None,
    sdk_id: Annotated[str | None, typer.Option(help="Application SDK ID (default: the local app).")] = None,
    key: Annotated[Path | None, typer.Option(help="Private key PEM (default: the local app's).")] = None,
    level: Annotated[str | None, typer.Option(help="level_of_assurance: low, medium, high.")] = None,
    validation: Annotated[str | None, typer.Option(help="img_validation_level: normal or low.")] = None,
    device: Annotated[str | None, typer.Option(help="metadata.device: mobile, laptop, unknown.")] = None,
    terminal_id: Annotated[str | None, typer.Option(help="Terminal-Id header.")] = None,
    session_id: Annotated[str | None, typer.Option(help="Session-Id header.")] = None,
) -> None:
    """Send IMAGE to ENDPOINT as a Yoti signed request and print the answer."""
    path = _ENDPOINTS.get(endpoint.strip("/"))
    if path is None:
        typer.echo(f"unknown endpoint {endpoint!r}; one of {', '.join(list(_ENDPOINTS)[:6])}", err=True)
        raise typer.Exit(2)
    verify = path.endswith("-verify")
    if verify and threshold is None:
        typer.echo("--threshold is required for the verify endpoints", err=True)
        raise typer.Exit(2)

    home = get_settings().home
    local = load_local_app(home)
    if sdk_id is None:
        if local is None:
            typer.echo("no --sdk-id and no local application: start `ageguard serve` first", err=True)
            raise typer.Exit(2)
        sdk_id = local.sdk_id
    if key is None:
        key = local.key_path if local is not None else home / LOCAL_APP_KEY
    if not key.is_file():
        typer.echo(f"private key {key} not found (use --key)", err=True)
        raise typer.Exit(2)
    base = (
        url or os.environ.get("AGEGUARD_URL") or (local.url if local and local.url else None) or DEFAULT_URL
    )

    fields: dict[str, Any] = {}
    if verify:
        fields["threshold"] = threshold
        fields["operator"] = operator.upper()
    if level is not None:
        fields["level_of_assurance"] = level
    if validation is not None:
        fields["img_validation_level"] = validation
    if device is not None:
        fields["device"] = device
    headers: dict[str, str] = {}
    if terminal_id is not None:
        headers["Terminal-Id"] = terminal_id
    if session_id is not None:
        headers["Session-Id"] = session_id

    with AgeGuardClient(base, sdk_id, key.read_bytes()) as client:
        payload = client._payload(image.read_bytes(), **fields)
        try:
            answer = client.request("POST", path, payload, headers=headers)
        except AgeGuardAPIError as exc:
            typer.echo(
                json.dumps({"error_code": exc.code, "error_message": exc.message, "status": exc.status})
            )
            raise typer.Exit(1) from exc
        except OSError as exc:  # httpx.ConnectError and friends
            typer.echo(f"could not reach {client.base_url}: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(json.dumps(answer))
