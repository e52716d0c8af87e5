"""One table from error class to exit code and a default hint; one place that prints errors."""

from __future__ import annotations

from hubless.core import errors

# The first matching class wins: most specific first.
EXIT_CODES: tuple[tuple[type[errors.HublessError], int, str], ...] = (
    (errors.KeyLeakError, 3, ""),
    (errors.UsageError, 2, ""),
    (errors.KeyStoreError, 1, "list keys with: hubless key list"),
    (errors.StoreError, 1, "check the folder's permissions and free space"),
    (
        errors.NotFoundError,
        1,
        "check the key and model name; the publisher or a mirror must be online",
    ),
    (errors.NoPeersError, 1, "nobody is seeding it right now; try again when a seeder is online"),
    (errors.NetworkError, 1, ""),
    (errors.UntrustedDataError, 1, ""),
    (errors.HublessError, 1, ""),
)


def classify(exc: errors.HublessError) -> tuple[int, str]:
    """Exit code and hint for an error (its own hint wins over the table's)."""
    for kind, code, hint in EXIT_CODES:
        if isinstance(exc, kind):
            return code, exc.hint or hint
    return 1, exc.hint
