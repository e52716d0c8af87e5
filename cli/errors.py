"""The one table from error class to exit code and hint for the command line.

Which hint a user sees, first match wins:
1. the hint given where the error was raised (it knows the case: which key, which file);
2. the most specific class with a hint, reading the error's class and then its bases; at
   each class this table's hint (worded for the command line) comes before the class's own
   hint in `hubless.core.errors` (worded for the Python API).
So `NoPeersError` gets its own "is anyone seeding it" hint, not the `--bootstrap` hint its
base class `NetworkError` carries for timeouts.
"""

from __future__ import annotations

from hubless.core import errors

# error class → (exit code, hint for the command line; "" to fall through to the class's).
TABLE: dict[type[errors.HublessError], tuple[int, str]] = {
    errors.KeyLeakError: (3, ""),
    errors.UsageError: (2, ""),
    errors.KeyStoreError: (1, "list the keys here with: hubless key list"),
    errors.StoreError: (1, "check the folder's permissions and free space"),
    errors.NotFoundError: (
        1,
        "check the key and the model name; the publisher, or a mirror seeding it, must have "
        "been online in the last hours (`hubless seed --key` keeps a record alive)",
    ),
    errors.NoPeersError: (
        1,
        "nobody reachable is serving it right now (peers that refuse are usually seeders "
        "that stopped, still listed in the DHT): is the publisher or any mirror seeding it "
        "(`hubless seed`), and is its port open to you? try again once one is online",
    ),
    errors.NetworkError: (1, ""),
    errors.UntrustedDataError: (1, ""),
    errors.LocalError: (1, ""),
    errors.HublessError: (1, ""),
}


def exit_code(exc: errors.HublessError) -> int:
    """1 operational, 2 usage, 3 a leaked key: the most specific class in TABLE."""
    for cls in type(exc).__mro__:
        if cls in TABLE:
            return TABLE[cls][0]
    return 1


def hint(exc: errors.HublessError) -> str:
    """The hint to print: the raise site's, else the most specific class or table hint."""
    if exc.explicit_hint is not None:
        return exc.explicit_hint
    for cls in type(exc).__mro__:
        table_hint = TABLE.get(cls, (1, ""))[1]
        if table_hint:
            return table_hint
        own = cls.__dict__.get("hint")
        if isinstance(own, str) and own:
            return own
    return ""


def classify(exc: errors.HublessError) -> tuple[int, str]:
    """Exit code and hint for an error."""
    return exit_code(exc), hint(exc)
