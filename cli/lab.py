"""Tools for a lab, a LAN or a first look: `hubless testnet` and `hubless demo`."""

from __future__ import annotations

from pathlib import Path

import click

from .app import App, Command, pass_app


@click.command(cls=Command)
@click.option(
    "--nodes", default=8, show_default=True, type=click.IntRange(min=1), help="DHT nodes to run."
)
@click.option(
    "--port", default=0, type=click.IntRange(0, 65535), help="First node's port (0: any)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@pass_app
def testnet(app: App, nodes: int, port: int, host: str) -> None:
    """Run a private DHT for a lab, a LAN or tests, until Ctrl-C.

    Prints the bootstrap endpoints (HOST:PORT) that other machines pass to --bootstrap.
    """
    from hubless.net.testnet import run_testnet

    run_testnet(nodes, port, host, as_json=app.renderer.as_json, stop=app.stop())


@click.command(cls=Command)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's identities and files in this folder.",
)
@pass_app
def demo(app: App, keep: Path | None) -> None:
    """Run a registry on this machine: testnet, publish two versions, pull in another process."""
    from hubless.lab.demo import run_demo

    outcome = run_demo(
        keep.resolve() if keep else None, say=app.renderer.event_text, on_event=lambda e: None
    )
    app.renderer.result(
        {"ok": True, **{k: v for k, v in outcome.items() if k != "history"}},
        "demo finished: every step verified",
        value="",
        note="demo finished: every step verified",
    )


COMMANDS = (testnet, demo)
