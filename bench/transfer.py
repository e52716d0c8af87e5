"""Transfer throughput: a generated model pulled over hubless vs. HTTP from a local nginx.

    python bench/transfer.py [--gib 2] [--files 4] [--reps 3] [--http nginx|lab]
        [--try LABEL='{"pull": {SETTINGS}, "seed": {SETTINGS}}'] [--skip aria2c,3seeds,pull]

A model of random bytes is seeded by 1 and by 3 local processes (a loopback testnet in its
own process) and pulled by another process to disk; libtorrent verifies every piece. The
baselines fetch the same files from our own nginx on 127.0.0.1: `curl` (one connection)
and `aria2c -x4`, each followed by `openssl dgst -sha256` of the files. Runs are interleaved
and the median of `--reps` is reported, with the CPU seconds per GiB each hubless process
spent (a measure that other load on the machine does not move much). Every contender reads
files from the page cache (dropping it needs root privileges we do not assume), and writes to
the page cache. Everything is created under one temp folder that is removed at the end.

Needs nginx, curl, aria2c and openssl (Debian: `apt-get install nginx-light curl aria2
openssl`); `--http lab` serves the files with hubless's own Python server instead of nginx
(slower than nginx, so the ratios flatter hubless: use it only where nginx cannot be had).

The "hubless, N seeds" contenders are a bare libtorrent download of the content torrent
(every piece's SHA-1 checked, no SHA-256 pass); "hubless pull (Client)" is what a user gets:
`Client.pull` from a publisher process (content metadata, download, SHA-256 of every file
into the cache; resolving the reference is timed apart and not counted). `--try` adds a
one-seed contender with libtorrent settings on top of the local profile, to compare a change
interleaved with the rest before it goes into `hubless.net.profile`.

Measured (2 GiB in 4 shards + config.json, 1 MiB pieces, median of 3, one run, shared 2-core
machine with other work on it; MB/s = MiB/s; CPU-s per GiB from `getrusage` per process):

    contender                       MB/s  / curl+openssl  CPU-s/GiB puller  seeders
    curl + openssl sha256            330       1.00
    hubless, 1 seed                  408       1.24             3.03          0.95
    hubless, 3 seeds                 486       1.47             2.35          1.16 (together)
    hubless pull (Client), 1 seed    306       0.93             4.39 (whole pull)
    aria2c -x4 + openssl sha256      151       0.46
    (curl alone, no hashing)         508

Single runs of the same contender vary by up to +-30 % with the machine's other load; the
CPU seconds per GiB vary less (puller 2.2-3.0, one seeder 0.8-1.2). See spec decision 0011
for what changed, what was tried and did not help, and the profile behind it.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from procs import read_line as _line
from procs import spawn_self
from procs import stop as _stop

if TYPE_CHECKING:
    from hubless.net.session import Session

MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _generate(folder: Path, gib: float, files: int) -> list[str]:
    """`files` files of random bytes, `gib` GiB in all, plus a small config.json."""
    import numpy as np

    rng = np.random.default_rng(20240601)
    folder.mkdir(parents=True)
    each = int(gib * 1024 * MIB) // files
    names = []
    for i in range(files):
        name = f"model-{i + 1:05d}-of-{files:05d}.safetensors"
        with open(folder / name, "wb") as fh:
            left = each
            while left:
                chunk = min(left, 64 * MIB)
                fh.write(rng.bytes(chunk))
                left -= chunk
        names.append(name)
    (folder / "config.json").write_text(json.dumps({"model_type": "bench", "size": each}))
    return [*names, "config.json"]


def _spawn(*args: str) -> subprocess.Popen[str]:
    return spawn_self(__file__, *args)


# --- roles run in child processes -----------------------------------------------------------


def _session(bootstrap: str, state: str | None = None, extra: str = "") -> Session:
    """A session of the local profile; `extra` (JSON) are settings to try on top of it."""
    from hubless.config import parse_endpoints
    from hubless.net.profile import NetProfile, loopback_violations
    from hubless.net.session import Session

    session = Session(NetProfile.local(parse_endpoints(bootstrap, "bootstrap")), state)
    if extra:
        session._ses.apply_settings(json.loads(extra))
    problems = loopback_violations(session.get_settings())
    assert not problems, problems
    session.wait_for_dht(2, 10)
    return session


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def role_seed(bootstrap: str, torrent: str, save_path: str, extra: str = "") -> None:
    session = _session(bootstrap, None, extra)
    ih = session.seed(Path(torrent).read_bytes(), save_path, trust_files=True)
    session.wait_finished(ih, 60)
    print(session.listen_port, flush=True)
    start = _cpu()
    sys.stdin.readline()  # the parent asks for the CPU spent, then closes stdin or kills us
    print(json.dumps({"cpu": _cpu() - start}), flush=True)
    sys.stdin.read()


def role_pull(
    bootstrap: str, torrent: str, save_path: str, state: str, peers: str, extra: str = ""
) -> None:
    session = _session(bootstrap, state, extra)
    data = Path(torrent).read_bytes()
    start, cpu = time.perf_counter(), _cpu()
    ih = session.download(data, save_path)
    for port in filter(None, peers.split(",")):
        session.connect_peer(ih, "127.0.0.1", int(port))
    done = session.wait_finished(ih, 600)
    seconds = time.perf_counter() - start
    payload = session.payload_downloaded(ih)
    report = {"seconds": seconds, "bytes": done.wanted, "payload": payload, "cpu": _cpu() - cpu}
    print(json.dumps(report), flush=True)
    session.close()


# --- the contenders ----------------------------------------------------------------------------


@contextmanager
def nginx(root: Path, work: Path) -> Iterator[int]:
    port = _free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _sha256(paths: list[Path]) -> None:
    subprocess.run(
        ["openssl", "dgst", "-sha256", *map(str, paths)], check=True, stdout=subprocess.DEVNULL
    )


CURL_ONLY: list[float] = []  # seconds of the download alone, for the record


def run_curl(port: int, names: list[str], dst: Path) -> float:
    dst.mkdir(parents=True)
    start = time.perf_counter()
    args = ["curl", "-s", "--fail"]
    for name in names:
        args += ["-o", str(dst / name), f"http://127.0.0.1:{port}/{name}"]
    subprocess.run(args, check=True)
    CURL_ONLY.append(time.perf_counter() - start)
    _sha256([dst / n for n in names])
    return time.perf_counter() - start


def run_aria2(port: int, names: list[str], dst: Path) -> float:
    dst.mkdir(parents=True)
    urls = dst.parent / "urls.txt"
    urls.write_text("".join(f"http://127.0.0.1:{port}/{n}\n" for n in names))
    start = time.perf_counter()
    subprocess.run(
        [
            "aria2c",
            "-q",
            "-x4",
            "-s4",
            "-j1",
            "--file-allocation=none",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "-d",
            str(dst),
            "-i",
            str(urls),
        ],
        check=True,
    )
    _sha256([dst / n for n in names])
    return time.perf_counter() - start


CPU: dict[str, list[tuple[float, float]]] = {}  # label -> (pull, all seeders) CPU s per run


def run_hubless(
    bootstrap: str,
    torrent: Path,
    src: Path,
    dst: Path,
    seeds: int,
    work: Path,
    label: str,
    settings: dict[str, dict[str, object]] | None = None,
) -> float:
    """Seconds for one pull from `seeds` seeders; `settings` ({"pull": {...}, "seed": {...}})
    are libtorrent settings tried on top of the local profile."""
    settings = settings or {}
    seed_extra = json.dumps(settings.get("seed", {}))
    pull_extra = json.dumps(settings.get("pull", {}))
    seeders = [
        _spawn("--role", "seed", bootstrap, str(torrent), str(src), seed_extra)
        for _ in range(seeds)
    ]
    try:
        ports = [_line(p) for p in seeders]
        state = work / f"pull-state-{time.monotonic_ns()}"
        puller = _spawn(
            "--role",
            "pull",
            bootstrap,
            str(torrent),
            str(dst),
            str(state),
            ",".join(ports),
            pull_extra,
        )
        result = json.loads(_line(puller))
        puller.wait(60)
        seed_cpu = 0.0
        for proc in seeders:
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
            seed_cpu += float(json.loads(_line(proc))["cpu"])
        CPU.setdefault(label, []).append((float(result["cpu"]), seed_cpu))
        shutil.rmtree(state, ignore_errors=True)
        return float(result["seconds"])
    finally:
        for proc in seeders:
            _stop(proc)


FANOUT = str(Path(__file__).with_name("fanout.py"))  # its origin and consumer roles
PULLS: list[dict[str, float]] = []  # the real pulls' phases, for the record


class ClientPulls:
    """A real `Client.pull` (resolve, manifest, content metadata, download, SHA-256 of every
    file into the cache) from one publisher process that published the model and seeds it.

    The publisher is started once (publishing hashes and copies the model); each pull runs
    in a new consumer process with a fresh home on its own loopback address. The time
    counted starts when the consumer looks for the content torrent's peers (resolving is
    not part of a transfer) and ends when every file is verified in the cache.
    """

    def __init__(self, bootstrap: str, model: Path, work: Path) -> None:
        self.bootstrap, self.work, self.runs = bootstrap, work, 0
        self.origin = spawn_self(
            FANOUT, "--role", "origin", bootstrap, str(work / "origin"), str(model), "0", "off"
        )
        self.ref = json.loads(_line(self.origin))["ref"]

    def close(self) -> None:
        _stop(self.origin)

    def __call__(self, dst: Path) -> float:
        self.runs += 1
        home = self.work / f"consumer{self.runs}"
        consumer = spawn_self(
            FANOUT,
            "--role",
            "consumer",
            self.bootstrap,
            str(home),
            f"127.101.{self.runs}.10",
            self.ref,
        )
        try:
            assert _line(consumer) == "ready"
            assert consumer.stdin is not None
            consumer.stdin.write("go\n")
            consumer.stdin.flush()
            report = json.loads(_line(consumer))
        finally:
            _stop(consumer)
            shutil.rmtree(home, ignore_errors=True)
        stages = report["stages"]
        start, end = stages["finding"], report["seconds"]
        phases = {
            "seconds": end - start,
            "verify": stages.get("verified", end) - stages.get("verifying", end),
            "resolve": start,
            "cpu": float(report["cpu"]),
        }
        PULLS.append(phases)
        return phases["seconds"]


def check_tools(http: str) -> None:
    """Stop with a sentence naming what is missing, instead of a traceback later."""
    needed = ["curl", "aria2c", "openssl"] + (["nginx"] if http == "nginx" else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        packages = {"nginx": "nginx-light", "aria2c": "aria2"}
        names = " ".join(packages.get(tool, tool) for tool in missing)
        sys.exit(
            f"bench/transfer.py needs {', '.join(missing)}: install with "
            f"`apt-get install {names}`"
            + (
                " (or run with --http lab to serve with Python instead of nginx)"
                if "nginx" in missing
                else ""
            )
        )


@contextmanager
def lab_server(root: Path) -> Iterator[int]:
    from hubless.lab.webserver import StaticServer

    with StaticServer(root) as server:
        yield server.port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dir", default=None, help="parent of the temp folder (default: /tmp)")
    parser.add_argument(
        "--http", choices=["nginx", "lab"], default="nginx", help="the HTTP baselines' server"
    )
    parser.add_argument(
        "--try",
        dest="variants",
        action="append",
        default=[],
        metavar="LABEL=JSON",
        help="a 1-seed hubless contender with settings on top of the local profile, e.g. "
        'pwrite=\'{"pull": {"disk_write_mode": 0}, "seed": {}}\' (repeatable)',
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated contenders to leave out: aria2c, 3seeds, pull"
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    check_tools(args.http)

    from hubless.net.torrents import create_content_torrent

    work = Path(tempfile.mkdtemp(prefix="hubless-bench-", dir=args.dir))
    work.chmod(0o755)  # nginx workers drop privileges and must read the files
    testnet = None
    try:
        src = work / "src" / "model"
        t0 = time.perf_counter()
        names = _generate(src, args.gib, args.files)
        total = sum((src / n).stat().st_size for n in names)
        print(
            f"generated {total / MIB:.0f} MiB in {len(names)} files "
            f"({time.perf_counter() - t0:.1f}s)"
        )
        t0 = time.perf_counter()
        content = create_content_torrent(src, names)
        hashing = time.perf_counter() - t0
        print(
            f"content torrent: {content.piece_length // 1024} KiB pieces; hashed SHA-1 pieces "
            f"+ per-file SHA-256 in {hashing:.2f}s ({total / MIB / hashing:.0f} MB/s)"
        )
        torrent = work / "content.torrent"
        torrent.write_bytes(content.torrent_bytes)

        testnet = subprocess.Popen(
            [sys.executable, "-m", "hubless.net.testnet", "--nodes", "8", "--json"],
            stdout=subprocess.PIPE,
            text=True,
        )
        bootstrap = ",".join(json.loads(_line(testnet))["bootstrap"])

        contenders: dict[str, Callable[[Path], float]] = {}
        results: dict[str, list[float]] = {}
        serve = (
            nginx(work / "src" / "model", work)
            if args.http == "nginx"
            else lab_server(work / "src" / "model")
        )
        with serve as port, ExitStack() as stack:
            contenders["curl + openssl sha256"] = lambda d: run_curl(port, names, d)
            contenders["hubless, 1 seed"] = lambda d: run_hubless(
                bootstrap, torrent, work / "src", d, 1, work, "hubless, 1 seed"
            )
            if "3seeds" not in skip:
                contenders["hubless, 3 seeds"] = lambda d: run_hubless(
                    bootstrap, torrent, work / "src", d, 3, work, "hubless, 3 seeds"
                )
            for variant in args.variants:
                name, _, spec = variant.partition("=")
                label = f"hubless, 1 seed, {name}"
                contenders[label] = lambda d, label=label, spec=spec: run_hubless(
                    bootstrap, torrent, work / "src", d, 1, work, label, json.loads(spec)
                )
            if "aria2c" not in skip:
                contenders["aria2c -x4 + openssl sha256"] = lambda d: run_aria2(port, names, d)
            if "pull" not in skip:
                pulls = stack.enter_context(closing(ClientPulls(bootstrap, src, work)))
                contenders["hubless pull (Client), 1 seed"] = pulls
            for rep in range(args.reps):
                for label, run in contenders.items():
                    dst = work / "dst"
                    seconds = run(dst)
                    shutil.rmtree(dst, ignore_errors=True)
                    results.setdefault(label, []).append(seconds)
                    print(f"  rep {rep + 1} {label:30s} {total / MIB / seconds:7.0f} MB/s")
        rate = {label: total / MIB / statistics.median(s) for label, s in results.items()}
        rate["(curl alone, no hashing)"] = total / MIB / statistics.median(CURL_ONLY)
        print(f"\nmedian of {args.reps}, {total / MIB:.0f} MiB (MB/s = MiB/s):")
        for label, mbs in rate.items():
            print(f"  {label:30s} {mbs:7.0f} MB/s")
        base, aria = rate["curl + openssl sha256"], rate.get("aria2c -x4 + openssl sha256")
        curl_alone = rate["(curl alone, no hashing)"]
        for label, hub in rate.items():
            if not label.startswith("hubless"):
                continue
            print(
                f"  ratio {label:30s} / curl: {hub / base:.2f}   "
                + (f"/ aria2c -x4: {hub / aria:.2f}   " if aria else "")
                + f"/ curl alone: {hub / curl_alone:.2f}"
            )
        gib = total / (1 << 30)
        if PULLS:
            verify = statistics.median(p["verify"] for p in PULLS)
            resolve = statistics.median(p["resolve"] for p in PULLS)
            print(
                f"  hubless pull (Client): median verify pass after the download {verify:.2f}s, "
                f"resolve before it {resolve:.2f}s (not counted), CPU s per GiB "
                f"{statistics.median(p['cpu'] for p in PULLS) / gib:.2f} (whole pull)"
            )
        for label, runs in CPU.items():
            pull = statistics.median(r[0] for r in runs) / gib
            seed = statistics.median(r[1] for r in runs) / gib
            print(f"  CPU s per GiB, {label}: puller {pull:.2f}, seeders together {seed:.2f}")
    finally:
        if testnet is not None:
            _stop(testnet)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, rest = sys.argv[2], sys.argv[3:]
        if role == "seed":
            role_seed(*rest)
        else:
            role_pull(*rest)
    else:
        main()
