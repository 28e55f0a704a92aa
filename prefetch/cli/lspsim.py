"""`prefetch lsp-sim serve` and `prefetch lsp-sim world`: the LSP simulator.

`serve --data DIR` reads `DIR/world.json` (or generates and writes it) and the dev PKI in
`DIR/pki` (or generates it), then serves the simulated LSP with mutual TLS and token
verification on loopback until Ctrl-C. The PKI passphrase comes from `--passphrase-file`
or `PREFETCH_PKI_PASSPHRASE`, never from the command line.

Exit codes: 0 ok (also after Ctrl-C); 2 usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer

from prefetch.cli.common import clean_errors

WORLD_FILE = "world.json"


def serve(
    *,
    data: Path = typer.Option(..., "--data", help="Directory for world.json and the dev PKI."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="TCP port; 0 picks a free one."),
    profile: str = typer.Option(
        "realistic", "--profile", help="ideal, realistic, flaky, outage, regions or a .toml file."
    ),
    time_scale: float | None = typer.Option(
        None, "--time-scale", min=0.0, help="Multiply every simulated duration (0.02: fast demo)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    seed: int = typer.Option(1, "--seed", help="Seed when the world is generated."),
    patients: int = typer.Option(250, "--patients", min=0, help="Patients in a new world."),
    key_size: int = typer.Option(4096, "--key-size", help="RSA key size of a new dev PKI."),
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", help="File whose first line is the PKI passphrase."
    ),
) -> None:
    """Serve the simulated LSP (mutual TLS + token verification) until Ctrl-C."""
    from prefetch.errors import ConfigError
    from prefetch.lspsim.profiles import load_profile
    from prefetch.lspsim.secure import PKI_SUBDIR, load_or_create_dev_pki, secure_from_dev_pki
    from prefetch.lspsim.server import SimulatorServer
    from prefetch.lspsim.world import World
    from prefetch.security.keys import read_passphrase

    with clean_errors():
        chosen = load_profile(profile, time_scale=time_scale)
        passphrase = read_passphrase(passphrase_file)
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                "cannot use data directory",
                path=str(data),
                error=exc.strerror or type(exc).__name__,
            ) from None
        world_path = data / WORLD_FILE
        if world_path.is_file():
            world = World.load(world_path)
        else:
            world = World.generate(seed, patients)
            world.save(world_path)
        pki = load_or_create_dev_pki(data / PKI_SUBDIR, passphrase, key_size=key_size)
        tls, verifier = secure_from_dev_pki(pki, passphrase)
        sim = SimulatorServer(world, chosen, tls=tls, verifier=verifier, host=host, port=port)
        sim.start()
    typer.echo(f"LSP simulator ({chosen.name}, {len(world.patients)} patients) at {sim.url}")
    typer.echo(f"  stats: GET {sim.stats_url}   reset: POST {sim.reset_url}")
    typer.echo(f"  trust: {pki.ca_bundle}; client certificate: {pki.hospital.p12}")
    typer.echo("  Ctrl-C stops it.")
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        sim.stop()
        typer.echo("stopped")


def world(
    *,
    seed: int = typer.Option(..., "--seed", help="Random seed: same seed, same world."),
    patients: int = typer.Option(..., "--patients", min=0, help="Number of patients."),
    out: Path | None = typer.Option(None, "--out", help="Write the JSON here (default stdout)."),
    reference_date: str | None = typer.Option(
        None, "--reference-date", help="YYYY-MM-DD the two-year history ends (default today)."
    ),
) -> None:
    """Generate a seeded world of pharmacies, registrations and dispenses."""
    from prefetch.errors import ConfigError
    from prefetch.lspsim.world import World

    with clean_errors():
        try:
            ref = dt.date.fromisoformat(reference_date) if reference_date else None
        except ValueError:
            raise ConfigError("reference date must be YYYY-MM-DD", value=reference_date) from None
        generated = World.generate(seed, patients, reference_date=ref)
        if out is None:
            typer.echo(json.dumps(generated.to_json(), ensure_ascii=False))
            return
        generated.save(out)
    registered = sum(1 for p in generated.patients if p.registrations)
    dispenses = sum(len(r.dispenses) for p in generated.patients for r in p.registrations)
    typer.echo(
        f"world written to {out}: {len(generated.patients)} patients ({registered} registered), "
        f"{len(generated.pharmacies)} pharmacies, {dispenses} dispenses"
    )


def register(app: typer.Typer) -> None:
    sim_app = typer.Typer(
        help="The LSP simulator: synthetic pharmacies behind a real SOAP/TLS server."
    )
    app.add_typer(sim_app, name="lsp-sim")
    sim_app.command("serve")(serve)
    sim_app.command("world")(world)
