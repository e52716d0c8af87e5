"""A Hugging Face-compatible view of pulled versions, sharing hubless's blobs (spec §8.4).

huggingface_hub's cache layout, under its hub cache folder (`Config.hf_cache_dir`):

    models--<KEY>--<NAME>/blobs/<sha256 hex>            a hard link to hubless's blob
                                                        (a symbolic link across filesystems)
    models--<KEY>--<NAME>/snapshots/<commit>/<path>     a relative link to ../../blobs/<sha>
    models--<KEY>--<NAME>/refs/<version label>          the commit of that version
    models--<KEY>--<NAME>/refs/main                     the commit of the newest version pulled

`<commit>` is the first 20 bytes of the version's manifest hash in hex: 40 hex digits, as
huggingface_hub expects of a commit, and fixed by the signed manifest. So
`from_pretrained("KEY/NAME")`, `snapshot_download(..., local_files_only=True)` and
`hf_hub_download` find a pulled model offline, `revision="v1"` picks a version, and `hf cache
ls` lists it. No byte is stored twice. Every name appears by an atomic rename.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

from ..files import atomic_write

MAIN = "main"


def repo_id(publisher_text: str, name: str) -> str:
    return f"{publisher_text}/{name}"


def compatible(publisher_text: str, name: str) -> bool:
    """Whether huggingface_hub accepts `KEY/NAME` as a repository id (it refuses `--`)."""
    return "--" not in name and len(name) <= 96


def repo_folder(root: Path, publisher_text: str, name: str) -> Path:
    return root / f"models--{publisher_text}--{name}"


def commit_of(manifest_hash: bytes) -> str:
    """The commit hash a version has in the view: 40 hex digits of its manifest hash."""
    return manifest_hash[:20].hex()


def add_version(
    folder: Path,
    commit: str,
    labels: Iterable[str],
    files: Iterable[tuple[str, Path, bytes]],
) -> None:
    """Link `files` ((path, hubless blob, sha256)) into `folder` as revision `commit`.

    `labels` are the refs to point at it (the version label, and `main` when it is the
    newest pulled). Files already there are kept: a later pull of more files of the same
    version adds to the snapshot, as huggingface_hub's own partial downloads do.
    """
    blobs = folder / "blobs"
    snapshot = folder / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for rel, source, sha in files:
        blob = blobs / sha.hex()
        if not blob.exists():
            _share(source, blob)
        target = snapshot / rel
        if target.is_symlink() or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        up = "../" * (rel.count("/") + 2)
        _replace_with_link(Path(f"{up}blobs/{sha.hex()}"), target)
    for label in labels:
        atomic_write(folder / "refs" / label, commit.encode())


def remove_version(folder: Path, commit: str) -> None:
    """Remove revision `commit`, the refs naming it, and blobs no other revision links."""
    snapshot = folder / "snapshots" / commit
    refs = folder / "refs"
    for ref in list(refs.iterdir()) if refs.is_dir() else ():
        with contextlib.suppress(OSError):
            if ref.is_file() and ref.read_text().strip() == commit:
                ref.unlink()
    shutil.rmtree(snapshot, ignore_errors=True)
    used = {
        os.path.basename(os.readlink(p))
        for p in (folder / "snapshots").rglob("*")
        if p.is_symlink()
    }
    blobs = folder / "blobs"
    for blob in list(blobs.iterdir()) if blobs.is_dir() else ():
        if blob.name not in used:
            with contextlib.suppress(FileNotFoundError):
                blob.unlink()
    if not any((folder / "snapshots").iterdir()):
        shutil.rmtree(folder, ignore_errors=True)


def point(folder: Path, label: str, commit: str) -> None:
    """Point ref `label` (e.g. `main`) at `commit`."""
    atomic_write(folder / "refs" / label, commit.encode())


def _share(source: Path, blob: Path) -> None:
    """`blob` becomes the same file as `source`: a hard link, else a symbolic link to it."""
    tmp = blob.with_name(f".{blob.name}.{_unique()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(source, tmp)
    except OSError:  # another filesystem: huggingface_hub follows one link hop to a store
        os.symlink(source.resolve(), tmp)
    os.replace(tmp, blob)


def _replace_with_link(link_text: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{_unique()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(link_text, tmp)
    os.replace(tmp, target)


def _unique() -> str:
    return f"{os.getpid()}.{threading.get_ident()}"
