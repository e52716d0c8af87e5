"""One exception hierarchy for hubless, split by blame (spec/PROTOCOL.md §9).

`UntrustedDataError`: somebody else sent bytes that break the protocol.
`NetworkError`: we could not get an answer. `LocalError`: our own input, store or keys.
Every error carries a one-line message and a hint. A hint given where the error is raised
(`explicit_hint`) knows the case and wins; otherwise the most specific class's hint applies.
"""

from __future__ import annotations


class HublessError(Exception):
    """Base of every error hubless raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def explicit_hint(self) -> str | None:
        """The hint given where this error was raised; None when only a class hint applies."""
        own = self.__dict__.get("hint")
        return own if isinstance(own, str) else None

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__

    def diagnostics(self) -> str:
        """The message and, when known, a hint on what to do about it."""
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message


# --- untrusted data: the remote side sent something that must be refused ---------------------


class UntrustedDataError(HublessError):
    """Data from the network or a file failed verification; nothing of it was used."""

    hint = "the data was refused and local state is unchanged; another peer may have a good copy"


class MalformedError(UntrustedDataError):
    """Bytes that do not decode to the structure the spec requires."""


class OversizedError(UntrustedDataError):
    """Input larger than the limit the spec sets for it."""


class UnsupportedFormatError(UntrustedDataError):
    """A format version this implementation does not know."""

    hint = "a newer hubless may understand it"


class BadSignatureError(UntrustedDataError):
    """A signature that does not verify under the publisher key."""


class WrongPublisherError(UntrustedDataError):
    """Signed by, or naming, a key other than the one asked for."""


class WrongNameError(UntrustedDataError):
    """Names a model other than the one asked for."""


class RollbackError(UntrustedDataError):
    """A version seq older than one already seen for this model."""

    hint = "someone served an old record; the newer one you saw before is kept"


class EquivocationError(UntrustedDataError):
    """Two different signed statements for the same seq."""


class KeyLeakError(EquivocationError):
    """A record under this machine's own key that this machine did not sign."""

    hint = (
        "the publisher key may have leaked: hubless did not overwrite these records; stop "
        "using the key, publish under a new one and tell your users"
    )


class HistoryRewriteError(UntrustedDataError):
    """A manifest whose history does not extend the one already known."""


class HostilePathError(UntrustedDataError):
    """A file path that could escape or clobber the destination folder."""


class IntegrityError(UntrustedDataError):
    """Downloaded bytes whose hash or size differ from what was signed."""


class FutureTimestampError(UntrustedDataError):
    """A timestamp further in the future than clock skew explains."""

    hint = "check this machine's clock; otherwise the publisher's clock is wrong"


# --- network: we could not get an answer -----------------------------------------------------


class NetworkError(HublessError):
    """The network did not give an answer in time."""

    hint = "check --bootstrap / HUBLESS_BOOTSTRAP and that some peer is online"


class NetTimeoutError(NetworkError):
    """An operation did not finish before its deadline."""


class NotFoundError(NetworkError):
    """No node or peer had what was asked for."""

    hint = (
        "check the key and the model name; the publisher, or a mirror, must have been "
        "online in the last hours to keep its record in the DHT"
    )


class OfflineError(NetworkError):
    """The answer needs the network and this run may not use it (`--offline`)."""

    hint = "pull it once with the network (drop --offline / HUBLESS_OFFLINE)"


class NoPeersError(NetworkError):
    """Content is known but nobody is seeding it right now."""

    hint = "nobody is serving it right now: is the publisher or any mirror seeding it?"


# --- local: our own input, keys or store -----------------------------------------------------


class LocalError(HublessError):
    """Something on this machine is wrong: input, keys or the local store."""


class UsageError(LocalError):
    """Input given by the user that hubless cannot accept."""


class InvalidReferenceError(UsageError):
    """A reference, key text, model name or version label that breaks the grammar."""


class KeyStoreError(LocalError):
    """A key file is missing, unreadable or locked with another passphrase."""


class StoreError(LocalError):
    """The local state database or cache is unusable."""


class StoppedError(LocalError):
    """Work given up because this process is stopping (a daemon asked to stop mid-download);
    what was verified stays on disk, and the work goes on at the next start."""
