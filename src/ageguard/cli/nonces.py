"""``ageguard nonces measure|purge``: the replay-nonce store's cost, and a purge for cron.

``measure`` runs on a throwaway store (a temporary SQLite file, or a new schema in the PostgreSQL database
named by ``--database-url``, dropped afterwards) and prints bytes per row, MB per million nonces kept, ms per
claim and the purge's time; ``--json``: the last stdout line is a JSON object (docs/performance.md,
"Nonce store"). ``purge`` deletes the expired nonces of the configured store in small batches (the server
also does this on its own, in the background).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ageguard.cli._app import app

nonces_cli = typer.Typer(no_args_is_help=True, help="The replay-nonce store: measure its cost, purge it.")
app.add_typer(nonces_cli, name="nonces")


@nonces_cli.command("measure")
def measure(
    database_url: Annotated[
        str | None,
        typer.Option(
            help="A PostgreSQL URL (a throwaway schema is made there, then dropped); default: temp SQLite."
        ),
    ] = None,
    rows: Annotated[int, typer.Option(min=1000, help="Nonces loaded before sizing and purging.")] = 100_000,
    sample: Annotated[
        int, typer.Option(min=10, help="Nonces claimed one by one (Hub.use_nonce).")
    ] = 2000,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per purge transaction.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Last stdout line: the figures as JSON.")] = False,
) -> None:
    """Measure what the nonce store costs per million requests kept: size, claim time, purge time."""
    from rich.console import Console
    from rich.table import Table

    from ageguard.eval.noncestore import measure as run

    err = Console(stderr=True)
    try:
        cost = run(database_url, rows=rows, sample=sample, batch_size=batch_size, progress=err.print)
    except ValueError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except Exception as exc:  # an unreachable database, missing rights: one line, no traceback
        typer.echo(f"Error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", err=True)
        raise typer.Exit(1) from exc
    table = Table(title=f"Nonce store on {cost.backend}, {cost.rows:,} rows")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("table bytes", f"{cost.table_bytes:,}")
    for name, size in sorted(cost.index_bytes.items()):
        table.add_row(f"index {name} bytes", f"{size:,}")
    table.add_row("bytes per row (table + indexes)", f"{cost.bytes_per_row:.1f}")
    table.add_row("MB per million nonces kept", f"{cost.mb_per_million:.1f}")
    table.add_row(
        "claim (use_nonce) ms p50 / p95 / mean",
        f"{cost.claim_ms_p50} / {cost.claim_ms_p95} / {cost.claim_ms_mean}",
    )
    table.add_row("purge s (all rows) / s per million", f"{cost.purge_s} / {cost.purge_s_per_million}")
    table.add_row(
        f"purge batches of {batch_size}: n / ms p50 / ms max",
        f"{cost.purge_batches} / {cost.purge_batch_ms_p50} / {cost.purge_batch_ms_max}",
    )
    table.add_row(
        "claims during the purge: n / ms p50 / p95 / max",
        f"{cost.claims_during_purge} / {cost.claim_during_purge_ms_p50} / {cost.claim_during_purge_ms_p95}"
        f" / {cost.claim_during_purge_ms_max}",
    )
    Console().print(table)
    for note in cost.notes:
        typer.echo(f"note: {note}")
    if as_json:
        typer.echo(json.dumps(cost.to_dict()))


@nonces_cli.command("purge")
def purge(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 1000,
) -> None:
    """Delete the expired nonces of the configured store (AGEGUARD_DATABASE_URL or AGEGUARD_HOME)."""
    from ageguard.errors import AgeGuardError
    from ageguard.hub import Hub

    try:
        with Hub.from_settings() as hub:
            removed = hub.purge_nonces(batch_size=batch_size)
    except AgeGuardError as exc:
        typer.echo(f"Error: {exc.message} ({exc.code})", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"purged": removed}))
