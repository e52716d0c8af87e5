"""In which order a pull fetches the files of a release, so that it can hash them early.

A pull hashes every file against the manifest (spec §8.4). libtorrent's rarest-first picker
completes every file at the very end of a download; fetched in bands in torrent order, the
files complete in turn and each is hashed while the rest downloads. In a swarm the bands
cost the seeds more upload, so a download gives them up once another downloader connects.
"""

from __future__ import annotations

from ..core.metainfo import Metainfo
from ..net.contract import Progress


def download_priorities(meta: Metainfo, wanted: set[str]) -> list[int]:
    """libtorrent file priorities for downloading the `wanted` files of a content torrent.

    Unwanted files and pad files get 0. Wanted files get 7 down to 1 by where they start in
    the torrent (seven bands of equal bytes): libtorrent fetches a higher band first, so the
    files complete one band after another and each is hashed while the rest downloads
    (spec §8.4), where rarest-first alone completed every file at the very end. In a swarm
    the bands cost the seeds: `Bands` says when a download gives them up.
    """
    total = sum(f.size for f in meta.files if not f.pad and f.path in wanted)
    priorities: list[int] = []
    offset = 0
    for f in meta.files:
        if f.pad or f.path not in wanted:
            priorities.append(0)
            continue
        priorities.append(7 - (7 * offset) // max(1, total))
        offset += f.size
    return priorities


class Bands:
    """Decides when a download gives up the bands of `download_priorities`: once another
    downloader was connected in two progress reports in a row (a peer counts as a seed only
    after its bitfield came), the download is in a swarm. Every consumer fetching the same
    band made the seeds send more (bench/fanout.py, 8 consumers of a 20 MB/s origin: it sent
    1.74x the model with bands, 1.29x with one priority); rarest first over the whole torrent
    spreads the pieces, and the files are then hashed at the end."""

    def __init__(self, priorities: list[int]) -> None:
        self.priorities = priorities
        self._in_a_row = 0  # reports in a row that saw another downloader; -1: given up

    def flatten(self, progress: Progress) -> list[int] | None:
        """The priorities to switch to now (every wanted file 1), once; else None."""
        if self._in_a_row < 0:
            return None
        self._in_a_row = self._in_a_row + 1 if progress.peers > progress.seeds else 0
        if self._in_a_row < 2:
            return None
        self._in_a_row = -1
        return [min(x, 1) for x in self.priorities]
