"""The pure protocol core: codecs, signing and verification (spec/PROTOCOL.md).

Bytes and an explicit `now` in, typed objects or bytes out. Nothing here touches files,
sockets, clocks or randomness; the layers above do, and hand the results in.
"""

from .bep44 import RawItem, VerifiedItem, sign_item, verify_item
from .history import VersionChoice, check_extends, choose_version, next_history
from .index import INDEX_SALT, IndexRecord, VerifiedIndex, build_index, verify_index
from .keys import PublicKey, SigningKey
from .manifest import (
    FileEntry,
    HistoryEntry,
    Manifest,
    VerifiedManifest,
    manifest_hash,
    sign_manifest,
    verify_manifest,
)
from .record import Record, VerifiedRecord, check_record, encode_record, verify_record
from .refs import Reference, check_name, check_version, parse_reference
from .trust import (
    KnownIndex,
    KnownRecord,
    KnownState,
    ModelTrust,
    check_known,
    choose_index,
    choose_record,
)

__all__ = [
    "INDEX_SALT",
    "FileEntry",
    "HistoryEntry",
    "IndexRecord",
    "KnownIndex",
    "KnownRecord",
    "KnownState",
    "Manifest",
    "ModelTrust",
    "PublicKey",
    "RawItem",
    "Record",
    "Reference",
    "SigningKey",
    "VerifiedIndex",
    "VerifiedItem",
    "VerifiedManifest",
    "VerifiedRecord",
    "VersionChoice",
    "build_index",
    "check_extends",
    "check_known",
    "check_name",
    "check_record",
    "check_version",
    "choose_index",
    "choose_record",
    "choose_version",
    "encode_record",
    "manifest_hash",
    "next_history",
    "parse_reference",
    "sign_item",
    "sign_manifest",
    "verify_index",
    "verify_item",
    "verify_manifest",
    "verify_record",
]
