"""What the cache holds and taking it away: list, rm, prune (spec §8.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hubless.core.errors import StoreError, UsageError
from hubless.core.manifest import FileEntry
from hubless.services.client import Client
from hubless.services.pull import model_lock
from hubless.services.verify import verify_folder

from .conftest import NAME, PUBLISHER, REF, V1_FILES, write_model

V2_FILES = {**V1_FILES, "model.safetensors": bytes(range(255, -1, -1)) * 300}  # 76,800 bytes
V1_ONLY = len(V1_FILES["model.safetensors"])
SHARED = len(V1_FILES["config.json"]) + len(V1_FILES["tokenizer/vocab.txt"])


@pytest.fixture
def two_versions(publisher: Client, consumer: Client, tmp_path: Path) -> Client:
    """The consumer holds v1 and v2, which share two of their three files."""
    publisher.publish(write_model(tmp_path / "v1", V1_FILES), NAME, "v1", key=PUBLISHER)
    consumer.pull(REF)
    publisher.publish(write_model(tmp_path / "v2", V2_FILES), NAME, "v2", key=PUBLISHER)
    consumer.pull(REF)
    return consumer


def test_list_counts_shared_files_once(two_versions: Client) -> None:
    listing = two_versions.list_cache()
    (model,) = listing.models
    assert [v.manifest.version for v in model.versions] == ["v1", "v2"]
    assert [v.partial for v in model.versions] == [False, False]
    assert model.size_on_disk == SHARED + V1_ONLY + len(V2_FILES["model.safetensors"])
    assert listing.size_on_disk == model.size_on_disk and listing.unused_blobs == 0
    summary = listing.summary()["models"][0]
    assert summary["reference"] == f"{PUBLISHER.public.text}/{NAME}"
    assert [v["size"] for v in summary["versions"]] == [
        SHARED + V1_ONLY,
        SHARED + len(V2_FILES["model.safetensors"]),
    ]


def test_rm_of_one_version_frees_only_what_the_other_does_not_use(two_versions: Client) -> None:
    v1_content = two_versions.resolve(REF.at("v1")).target.manifest.content_infohash
    assert v1_content in {e.infohash for e in two_versions.state.seeds()}
    removal = two_versions.remove(REF.at("v1"))
    assert removal.freed == V1_ONLY and removal.deferred == 0
    assert removal.removed == (str(REF.at("v1")),)
    (model,) = two_versions.list_cache().models
    assert [v.manifest.version for v in model.versions] == ["v2"]
    assert verify_folder(model.versions[0].path).ok  # the shared files are still there
    assert v1_content not in {e.infohash for e in two_versions.state.seeds()}  # not seeded


def test_rm_of_the_model_frees_everything_and_then_knows_nothing_to_remove(
    two_versions: Client,
) -> None:
    removal = two_versions.remove(REF)
    assert removal.freed == SHARED + V1_ONLY + len(V2_FILES["model.safetensors"])
    assert two_versions.list_cache().models == ()
    assert not [p for p in two_versions.cache.blobs.iterdir() if not p.name.startswith(".")]
    with pytest.raises(UsageError, match="is not in the cache"):
        two_versions.remove(REF)


def test_rm_refuses_while_a_pull_of_the_model_runs(two_versions: Client) -> None:
    with (
        two_versions.cache.locks.hold(model_lock(REF), shared=True),  # what a pull holds
        pytest.raises(StoreError, match="a pull of tiny-model is running"),
    ):
        two_versions.remove(REF.at("v1"))
    assert len(two_versions.list_cache().models[0].versions) == 2


def test_rm_leaves_blobs_for_prune_while_another_pull_runs(two_versions: Client) -> None:
    with two_versions.cache.locks.hold("gc", shared=True):  # a pull of some other model
        removal = two_versions.remove(REF.at("v1"))
    assert (removal.freed, removal.deferred) == (0, V1_ONLY)
    assert two_versions.list_cache().unused_blobs == V1_ONLY
    assert two_versions.prune().freed == V1_ONLY


def test_prune_frees_unused_blobs_and_abandoned_downloads(
    two_versions: Client, tmp_path: Path
) -> None:
    cache = two_versions.cache
    stray = tmp_path / "stray"
    stray.write_bytes(b"x" * 1000)
    import hashlib

    entry = FileEntry("stray", 1000, hashlib.sha256(stray.read_bytes()).digest())
    cache.add_blob(stray, entry)
    partial = cache.partial_dir(b"\x01" * 20) / "tiny-model"
    partial.mkdir(parents=True)
    (partial / "half").write_bytes(b"y" * 500)

    dry = two_versions.prune(dry_run=True)
    assert dry.dry_run and dry.freed == 1500
    assert cache.blob(entry.sha256).exists() and partial.exists()  # nothing removed
    done = two_versions.prune()
    assert done.freed == 1500 and sorted(done.removed) == sorted(dry.removed)
    assert not cache.blob(entry.sha256).exists() and not partial.exists()
    assert all(verify_folder(v.path).ok for v in two_versions.list_cache().models[0].versions)
    assert two_versions.prune().freed == 0


def test_prune_refuses_while_a_pull_runs(two_versions: Client) -> None:
    with (
        two_versions.cache.locks.hold("gc", shared=True),
        pytest.raises(StoreError, match="running"),
    ):
        two_versions.prune()


def test_a_partial_pull_is_listed_as_partial(
    publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    publisher.publish(write_model(tmp_path / "v1", V1_FILES), NAME, "v1", key=PUBLISHER)
    consumer.pull(REF, include=("*.json",))
    (model,) = consumer.list_cache().models
    (version,) = model.versions
    assert version.partial and [f.path for f in version.files] == ["config.json"]
    assert model.size_on_disk == len(V1_FILES["config.json"])
