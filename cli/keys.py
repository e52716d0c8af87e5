"""`hubless key new|list|show`: publisher keys on this machine."""

from __future__ import annotations

import sys

import click

from .app import DEFAULT_KEY, ENV_PASSPHRASE, App, Group, pass_app


@click.group(cls=Group)
def key() -> None:
    """Create and inspect publisher keys."""


@key.command("new")
@click.option("--name", default=DEFAULT_KEY, show_default=True, help="Local name of the key.")
@click.option("--no-passphrase", is_flag=True, help="Store the key unencrypted (0600 file).")
@pass_app
def key_new(app: App, name: str, no_passphrase: bool) -> None:
    """Create a new publisher key."""
    from hubless.core.errors import KeyStoreError, UsageError

    keys = app.client().keys
    if keys.exists(name):
        raise KeyStoreError(f"key {name!r} already exists", hint="choose another --name")
    passphrase = None
    if not no_passphrase:
        passphrase = app.config.passphrase
        if passphrase is None:
            if not sys.stdin.isatty():
                raise UsageError(
                    "a new key needs a passphrase",
                    hint=f"set {ENV_PASSPHRASE}, or pass --no-passphrase",
                )
            passphrase = str(
                click.prompt(
                    "Passphrase for the new key", hide_input=True, confirmation_prompt=True
                )
            )
    info = keys.create(name, passphrase)
    app.renderer.result(
        {
            "name": info.name,
            "public_key": info.public.text,
            "encrypted": info.encrypted,
            "path": str(info.path),
        },
        f"created key {info.name!r}: {info.public.text}\n(kept in {info.path}"
        + (", encrypted)" if info.encrypted else ", NOT encrypted)"),
        value=info.public.text,
        note=f"created key {info.name!r} in {info.path}",
    )


@key.command("list")
@pass_app
def key_list(app: App) -> None:
    """List the keys on this machine.

    With -q, prints only their names, one per line.
    """
    keys = app.client().keys.list()
    rows = [{"name": k.name, "public_key": k.public.text, "encrypted": k.encrypted} for k in keys]
    text = (
        "\n".join(
            f"{k.name:<16} {k.public.text}{'' if k.encrypted else '  (unencrypted)'}" for k in keys
        )
        or "no keys yet: create one with `hubless key new`"
    )
    app.renderer.result(rows, text, value="\n".join(k.name for k in keys))


@key.command("show")
@click.argument("name", default=DEFAULT_KEY)
@pass_app
def key_show(app: App, name: str) -> None:
    """Print a key's public text form (what consumers put before /NAME)."""
    info = app.client().keys.info(name)
    app.renderer.result(
        {
            "name": info.name,
            "public_key": info.public.text,
            "encrypted": info.encrypted,
            "path": str(info.path),
        },
        info.public.text,
        value=info.public.text,
    )


COMMANDS = (key,)
