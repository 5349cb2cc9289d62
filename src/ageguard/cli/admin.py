"""Admin commands: ``ageguard org|app|terminal ...`` and ``ageguard usage``.

The database is ``AGEGUARD_DATABASE_URL`` or the SQLite file in ``AGEGUARD_HOME`` (see settings).
Contract (SPEC "CLI and configuration contract"): ``ageguard app create`` prints a JSON object with at least
``sdk_id`` as the last line of stdout. Errors are one line on stderr and exit status 1, never a traceback.
Heavy imports (SQLAlchemy, Alembic, cryptography) happen inside the commands to keep ``ageguard`` fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from ageguard.cli._app import app

if TYPE_CHECKING:
    from rich.console import Console

    from ageguard.hub import AppView, Hub, OrgView, TerminalView

org_cli = typer.Typer(no_args_is_help=True, help="Organisations: create, list, suspend, activate.")
app_cli = typer.Typer(no_args_is_help=True, help="Applications: SDK ids, keys and allowed endpoints.")
terminal_cli = typer.Typer(
    no_args_is_help=True, help="Terminals registered to an application (self-checkout)."
)
app.add_typer(org_cli, name="org")
app.add_typer(app_cli, name="app")
app.add_typer(terminal_cli, name="terminal")


# -- helpers ---------------------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the Hub's errors into one clear line on stderr and exit status 1."""
    from ageguard.errors import AgeGuardError
    from ageguard.hub import HubError

    try:
        yield
    except AgeGuardError as exc:
        _fail(f"{exc.message} ({exc.code})")
    except HubError as exc:
        _fail(str(exc))


def _open_hub() -> Hub:
    from ageguard.errors import AgeGuardError
    from ageguard.hub import Hub
    from ageguard.settings import get_settings

    url = get_settings().resolved_database_url
    try:
        return Hub(url)
    except AgeGuardError as exc:
        from sqlalchemy.engine import make_url

        shown = make_url(url).render_as_string(hide_password=True)
        _fail(f"cannot open the hub database {shown}: {exc.message}")
    except Exception as exc:  # a malformed URL, an unwritable home directory, a missing driver...
        _fail(f"cannot open the hub database: {exc}")


def _emit_json(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, sort_keys=False, default=str))


def _console() -> Console:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def _split_endpoints(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _fingerprint(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def _org_json(org: OrgView) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "status": org.status,
        "billing_source_id": org.billing_source_id,
        "created": org.created.isoformat(),
    }


def _app_json(view: AppView) -> dict[str, Any]:
    from ageguard.hub import ENDPOINTS

    return {
        "sdk_id": view.sdk_id,
        "name": view.name,
        "org": view.org_name,
        "org_status": view.org_status,
        "enabled": view.enabled,
        "allowed_endpoints": [e for e in ENDPOINTS if e in view.allowed_endpoints]
        + sorted(view.allowed_endpoints - set(ENDPOINTS)),
        "public_key_fingerprint": _fingerprint(view.public_key_der),
        "created": view.created.isoformat() if view.created else None,
    }


def _terminal_json(t: TerminalView) -> dict[str, Any]:
    return {
        "sdk_id": t.sdk_id,
        "terminal_id": t.terminal_id,
        "label": t.label,
        "created": t.created.isoformat(),
    }


def _resolve_app(hub: Hub, ref: str) -> AppView:
    """An application by SDK id, or by name when exactly one application has that name."""
    from ageguard.errors import AgeGuardError

    view = hub.find_app(ref)
    if view is not None:
        return view
    named = [a for a in hub.list_apps() if a.name == ref.strip()]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        ids = ", ".join(a.sdk_id for a in named)
        _fail(f"{len(named)} applications are named {ref!r} ({ids}); give the SDK id")
    raise AgeGuardError("APP_NOT_FOUND", f"Application {ref} not found.")


def _read_public_key(path: Path) -> bytes:
    """The DER public key of a public key file (PEM or DER) or of a private key PEM (PKCS#1 or PKCS#8),
    validated (RSA); exits with a clear message otherwise. A private key is read, never stored."""
    from ageguard.errors import AgeGuardError
    from ageguard.hub import public_key_der

    try:
        data = path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read public key file {path}: {exc.strerror or exc}")
    from ageguard.hub.keys import public_key_der_of_private_pem

    try:
        if b"PRIVATE KEY-----" in data:  # PKCS#1 or PKCS#8: only the public part is registered
            return public_key_der_of_private_pem(data)
        return public_key_der(data)
    except AgeGuardError as exc:
        _fail(f"{path} is not a usable public key: {exc.message}")


class _StagedKey:
    """A private key written to a temporary file (mode 0600 from creation) beside its destination,
    moved into place only once the database change has succeeded."""

    def __init__(self, dest: Path, pem: bytes, force: bool) -> None:
        self.dest = dest
        if dest.is_dir():
            _fail(f"{dest} is a directory")
        if dest.exists() and not force:
            _fail(f"{dest} already exists (use --force to replace it)")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # mkstemp opens with O_CREAT | O_EXCL and mode 0600: never readable by others, whatever the umask.
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        except OSError as exc:
            _fail(f"cannot write the private key to {dest}: {exc.strerror or exc}")
        self.tmp = Path(tmp)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            self.discard()
            _fail(f"cannot write the private key to {dest}: {exc.strerror or exc}")

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.dest)
        except OSError as exc:
            self.discard()
            _fail(f"cannot move the private key into {self.dest}: {exc.strerror or exc}")

    def discard(self) -> None:
        with suppress(OSError):
            self.tmp.unlink()


def _key_source(
    private_key_out: Path | None, public_key: Path | None, force: bool
) -> tuple[bytes, _StagedKey | None]:
    """The DER public key to register and, when generating, the staged private key file."""
    if (private_key_out is None) == (public_key is None):
        _fail("give exactly one of --private-key-out FILE (generate a key pair) or --public-key FILE", code=2)
    if public_key is not None:
        return _read_public_key(public_key), None
    assert private_key_out is not None
    from ageguard.hub.keys import der_of, generate_private_key, private_key_pem

    key = generate_private_key(2048)
    staged = _StagedKey(private_key_out, private_key_pem(key), force)
    return der_of(key.public_key()), staged


# -- org ---------------------------------------------------------------------------------------------


@org_cli.command("create")
def org_create(
    name: str = typer.Argument(..., help="Organisation name (unique)."),
    billing_source_id: str | None = typer.Option(None, "--billing-source-id", help="Billing source id."),
) -> None:
    """Create an organisation. The last line of stdout is a JSON object."""
    with _errors():
        hub = _open_hub()
        org = hub.create_org(name, billing_source_id)
        typer.echo(f"Created organisation {org.name} ({org.id}).")
        _emit_json(_org_json(org))


@org_cli.command("list")
def org_list(json_out: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """List organisations."""
    with _errors():
        hub = _open_hub()
        orgs = hub.list_orgs()
        apps = hub.list_apps()
    if json_out:
        for org in orgs:
            _emit_json(_org_json(org) | {"apps": sum(1 for a in apps if a.org_name == org.name)})
        return
    from rich.table import Table

    table = Table("name", "status", "apps", "billing source", "id", "created")
    for org in orgs:
        n_apps = sum(1 for a in apps if a.org_name == org.name)
        table.add_row(
            org.name,
            org.status,
            str(n_apps),
            org.billing_source_id or "",
            org.id,
            org.created.strftime("%Y-%m-%d %H:%M"),
        )
    _console().print(table)


def _set_org_status(name_or_id: str, status: str) -> None:
    with _errors():
        org = _open_hub().set_org_status(name_or_id, status)
        typer.echo(f"Organisation {org.name} is {org.status}.")


@org_cli.command("suspend")
def org_suspend(name_or_id: str = typer.Argument(..., metavar="ORG", help="Name or id.")) -> None:
    """Suspend an organisation: its applications get INVALID_ORG_STATUS."""
    _set_org_status(name_or_id, "suspended")


@org_cli.command("activate")
def org_activate(name_or_id: str = typer.Argument(..., metavar="ORG", help="Name or id.")) -> None:
    """Re-activate a suspended organisation."""
    _set_org_status(name_or_id, "active")


# -- app ---------------------------------------------------------------------------------------------


_PRIVATE_KEY_OUT = typer.Option(
    None,
    "--private-key-out",
    help="Generate a 2048-bit RSA key pair; write the private key (PEM, mode 0600) here.",
)
_PUBLIC_KEY = typer.Option(
    None,
    "--public-key",
    help="Register this RSA key instead: a public key (PEM or DER), or the private key your SDK already uses "
    "(PKCS#1 or PKCS#8 PEM; only its public part is kept).",
)
_FORCE = typer.Option(False, "--force", help="Replace an existing --private-key-out file.")
_ENDPOINTS_CREATE = typer.Option(
    None, "--endpoints", help="Allowed endpoints, comma-separated or repeated (default: all)."
)
_ENDPOINTS_SET = typer.Option(..., "--endpoints", help="Allowed endpoints, comma-separated or repeated.")


@app_cli.command("create")
def app_create(
    name: str = typer.Option(..., "--name", help="Application name."),
    org: str | None = typer.Option(None, "--org", help="Organisation name or id (default: 'default')."),
    private_key_out: Path | None = _PRIVATE_KEY_OUT,
    public_key: Path | None = _PUBLIC_KEY,
    endpoints: list[str] | None = _ENDPOINTS_CREATE,
    force: bool = _FORCE,
) -> None:
    """Create an application. The last line of stdout is a JSON object with at least `sdk_id`."""
    with _errors():
        hub = _open_hub()
        allowed = _split_endpoints(endpoints)
        if allowed is not None:
            from ageguard.hub import normalise_endpoints

            allowed = normalise_endpoints(allowed)  # fail before a key is generated
        der, staged = _key_source(private_key_out, public_key, force)
        try:
            view = hub.create_app(name, org, der, allowed)
        except BaseException:
            if staged is not None:
                staged.discard()
            raise
        result = _app_json(view)
        typer.echo(f"Created application {view.name} in organisation {view.org_name}.")
        typer.echo(f"SDK ID: {view.sdk_id}")
        if staged is not None:
            staged.commit()
            typer.echo(
                f"Private key written to {staged.dest} (keep it secret; the server has only the public key)."
            )
            result["private_key_file"] = str(staged.dest.resolve())
        else:
            assert public_key is not None
            result["public_key_file"] = str(public_key.resolve())
        _emit_json(result)


@app_cli.command("list")
def app_list(
    org: str | None = typer.Option(None, "--org", help="Only this organisation's applications."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List applications."""
    with _errors():
        views = _open_hub().list_apps(org)
    if json_out:
        for view in views:
            _emit_json(_app_json(view))
        return
    from rich.table import Table

    table = Table("sdk id", "name", "org", "enabled", "endpoints")
    table.columns[0].no_wrap = True
    for view in views:
        org_label = view.org_name if view.org_status == "active" else f"{view.org_name} ({view.org_status})"
        table.add_row(
            view.sdk_id,
            view.name,
            org_label,
            "yes" if view.enabled else "no",
            ", ".join(_app_json(view)["allowed_endpoints"]),
        )
    _console().print(table)


def _set_enabled(ref: str, enabled: bool) -> None:
    with _errors():
        hub = _open_hub()
        view = hub.set_app_enabled(_resolve_app(hub, ref).sdk_id, enabled)
        typer.echo(f"Application {view.name} ({view.sdk_id}) is {'enabled' if view.enabled else 'disabled'}.")


@app_cli.command("disable")
def app_disable(ref: str = typer.Argument(..., metavar="APP", help="SDK id (or unique name).")) -> None:
    """Disable an application: its requests get DISABLED_APP_STATE."""
    _set_enabled(ref, False)


@app_cli.command("enable")
def app_enable(ref: str = typer.Argument(..., metavar="APP", help="SDK id (or unique name).")) -> None:
    """Enable an application."""
    _set_enabled(ref, True)


@app_cli.command("rotate-key")
def app_rotate_key(
    ref: str = typer.Argument(..., metavar="APP", help="SDK id (or unique name)."),
    private_key_out: Path | None = _PRIVATE_KEY_OUT,
    public_key: Path | None = _PUBLIC_KEY,
    force: bool = _FORCE,
) -> None:
    """Replace an application's key; the old key stops working at once. Last stdout line: JSON."""
    with _errors():
        hub = _open_hub()
        current = _resolve_app(hub, ref)
        der, staged = _key_source(private_key_out, public_key, force)
        try:
            view = hub.rotate_key(current.sdk_id, der)
        except BaseException:
            if staged is not None:
                staged.discard()
            raise
        result = _app_json(view)
        typer.echo(f"Rotated the key of application {view.name} ({view.sdk_id}).")
        if staged is not None:
            staged.commit()
            typer.echo(f"Private key written to {staged.dest}.")
            result["private_key_file"] = str(staged.dest.resolve())
        _emit_json(result)


@app_cli.command("set-endpoints")
def app_set_endpoints(
    ref: str = typer.Argument(..., metavar="APP", help="SDK id (or unique name)."),
    endpoints: list[str] = _ENDPOINTS_SET,
) -> None:
    """Replace the list of endpoints an application may call."""
    with _errors():
        hub = _open_hub()
        view = hub.set_allowed_endpoints(_resolve_app(hub, ref).sdk_id, _split_endpoints(endpoints) or [])
        allowed = ", ".join(_app_json(view)["allowed_endpoints"]) or "nothing"
        typer.echo(f"Application {view.name} may call: {allowed}.")


# -- terminal ----------------------------------------------------------------------------------------

_APP_OPTION = typer.Option(..., "--app", help="Application SDK id (or unique name).")


@terminal_cli.command("add")
def terminal_add(
    terminal_id: str = typer.Argument(..., help="The Terminal-Id the device sends."),
    app_ref: str = _APP_OPTION,
    label: str | None = typer.Option(None, "--label", help="A human label, e.g. 'Store 12, till 3'."),
) -> None:
    """Register a terminal for an application."""
    with _errors():
        hub = _open_hub()
        t = hub.add_terminal(_resolve_app(hub, app_ref).sdk_id, terminal_id, label)
        typer.echo(f"Registered terminal {t.terminal_id} for application {t.sdk_id}.")
        _emit_json(_terminal_json(t))


@terminal_cli.command("list")
def terminal_list(
    app_ref: str = _APP_OPTION,
    json_out: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List an application's terminals."""
    with _errors():
        hub = _open_hub()
        items = hub.list_terminals(_resolve_app(hub, app_ref).sdk_id)
    if json_out:
        for t in items:
            _emit_json(_terminal_json(t))
        return
    from rich.table import Table

    table = Table("terminal id", "label", "registered")
    for t in items:
        table.add_row(t.terminal_id, t.label or "", t.created.strftime("%Y-%m-%d %H:%M"))
    _console().print(table)


@terminal_cli.command("remove")
def terminal_remove(
    terminal_id: str = typer.Argument(..., help="The terminal id to remove."),
    app_ref: str = _APP_OPTION,
) -> None:
    """Remove a registered terminal."""
    with _errors():
        hub = _open_hub()
        view = _resolve_app(hub, app_ref)
        hub.remove_terminal(view.sdk_id, terminal_id)
        typer.echo(f"Removed terminal {terminal_id} from application {view.sdk_id}.")


# -- usage -------------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A point in time: ``2025-03-01``, ``2025-03-01T12:00``, ``...+02:00`` (naive means UTC),
    or a span back from now: ``90m``, ``24h``, ``7d``."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO date/time nor a span like 24h or 7d", param_hint="--since/--until"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def usage_report(rows: list[Any]) -> dict[str, Any]:
    """Totals by outcome and endpoint, and the per-terminal error report, from :class:`UsageRow` s."""
    by_outcome: dict[str, int] = {}
    by_endpoint: dict[str, int] = {}
    per_terminal: dict[str | None, dict[str, int]] = {}
    for r in rows:
        by_outcome[r.outcome] = by_outcome.get(r.outcome, 0) + r.count
        by_endpoint[r.endpoint] = by_endpoint.get(r.endpoint, 0) + r.count
        codes = per_terminal.setdefault(r.terminal_id, {})
        codes[r.outcome] = codes.get(r.outcome, 0) + r.count
    terminals = []
    for terminal_id, codes in sorted(per_terminal.items(), key=lambda kv: (kv[0] is not None, kv[0] or "")):
        total = sum(codes.values())
        ok = codes.get("OK", 0)
        errors = dict(sorted(((c, n) for c, n in codes.items() if c != "OK"), key=lambda cn: (-cn[1], cn[0])))
        terminals.append(
            {
                "terminal_id": terminal_id,
                "requests": total,
                "ok": ok,
                "errors": total - ok,
                "error_rate": round((total - ok) / total, 4) if total else 0.0,
                "error_codes": errors,
            }
        )
    total = sum(by_outcome.values())
    return {
        "total": total,
        "ok": by_outcome.get("OK", 0),
        "errors": total - by_outcome.get("OK", 0),
        "by_outcome": dict(sorted(by_outcome.items(), key=lambda cn: (-cn[1], cn[0]))),
        "by_endpoint": dict(sorted(by_endpoint.items())),
        "terminals": terminals,
        "rows": [
            {"endpoint": r.endpoint, "terminal_id": r.terminal_id, "outcome": r.outcome, "count": r.count}
            for r in rows
        ],
    }


@app.command("usage")
def usage(
    app_ref: str | None = typer.Option(None, "--app", help="Only this application (SDK id or unique name)."),
    terminal: str | None = typer.Option(None, "--terminal", help="Only this terminal id."),
    since: str | None = typer.Option(
        None, "--since", help="From: ISO date/time (UTC if no offset) or 24h, 7d..."
    ),
    until: str | None = typer.Option(None, "--until", help="Up to (exclusive), same forms as --since."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (the last line of stdout)."),
) -> None:
    """Request counts by outcome code, and the per-terminal error report, from the request records."""
    since_dt = parse_when(since) if since else None
    until_dt = parse_when(until) if until else None
    with _errors():
        hub = _open_hub()
        sdk_id: str | None = None
        if app_ref is not None:
            from ageguard.hub.store import _parse_uuid

            parsed = _parse_uuid(app_ref)  # records of a removed application can still be reported
            sdk_id = str(parsed) if parsed is not None else _resolve_app(hub, app_ref).sdk_id
        rows = hub.usage(sdk_id, terminal, since_dt, until_dt)
    report = {
        "app": sdk_id,
        "terminal": terminal,
        "since": since_dt.isoformat() if since_dt else None,
        "until": until_dt.isoformat() if until_dt else None,
    } | usage_report(rows)
    if json_out:
        _emit_json(report)
        return
    from rich.table import Table

    console = _console()
    scope = ", ".join(
        part
        for part in (
            f"app {sdk_id}" if sdk_id else "all apps",
            f"terminal {terminal}" if terminal else "",
            f"since {since_dt:%Y-%m-%d %H:%M} UTC" if since_dt else "",
            f"until {until_dt:%Y-%m-%d %H:%M} UTC" if until_dt else "",
        )
        if part
    )
    console.print(f"Requests: {report['total']} ({report['ok']} OK, {report['errors']} errors) — {scope}")
    if not rows:
        return
    outcomes = Table("outcome", "count", title="By outcome code")
    for code, n in report["by_outcome"].items():
        outcomes.add_row(code, str(n))
    console.print(outcomes)
    per_terminal = Table(
        "terminal", "requests", "OK", "errors", "error rate", "error codes", title="By terminal"
    )
    for t in report["terminals"]:
        per_terminal.add_row(
            t["terminal_id"] if t["terminal_id"] is not None else "(none)",
            str(t["requests"]),
            str(t["ok"]),
            str(t["errors"]),
            f"{t['error_rate']:.1%}",
            ", ".join(f"{c}×{n}" for c, n in t["error_codes"].items()),
        )
    console.print(per_terminal)
