"""Code the network tests run in other processes (publisher, seeder, downloader).

Each snippet takes the testnet's bootstrap endpoints as argv[1], refuses to run a session
that could leave loopback, and talks to the test through stdout lines.
"""

from __future__ import annotations

PRELUDE = """
import json, sys, time
from pathlib import Path
from hubless.core.keys import SigningKey
from hubless.config import parse_endpoints
from hubless.net.profile import NetProfile, loopback_violations
from hubless.net.session import Session

def open_session(state_dir=None, **kw):
    s = Session(NetProfile.local(parse_endpoints(sys.argv[1], 'argv')), state_dir, **kw)
    problems = loopback_violations(s.get_settings())
    assert not problems, problems
    s.wait_for_dht(2, 10)
    return s
"""

# argv: bootstrap, key seed hex, salt, payload, ...  → prints nodes that stored each put
PUBLISH = (
    PRELUDE
    + """
with open_session() as s:
    key, salt = SigningKey(bytes.fromhex(sys.argv[2])), sys.argv[3].encode()
    for payload in sys.argv[4:]:
        print(s.dht_put(key, salt, payload.encode(), 10), flush=True)
"""
)

# argv: bootstrap, save_path, upload_limit, torrent files...  → prints "ready", then seeds
SEED = (
    PRELUDE
    + """
s = open_session()
for torrent in sys.argv[4:]:
    ih = s.seed(Path(torrent).read_bytes(), sys.argv[2], upload_limit=int(sys.argv[3]))
    s.wait_finished(ih, 30)
print("ready", flush=True)
while True:
    time.sleep(1)
"""
)

# argv: bootstrap, torrent file, save_path, state_dir, resume_interval, stop_at_fraction, mode
# Prints progress as JSON lines; at stop_at_fraction done it closes cleanly (mode "close")
# or keeps going and waits to be killed (mode "kill").
DOWNLOAD = (
    PRELUDE
    + """
torrent, save_path, state_dir = Path(sys.argv[2]).read_bytes(), sys.argv[3], sys.argv[4]
stop_at, mode = float(sys.argv[6]), sys.argv[7]
s = open_session(state_dir, resume_interval=float(sys.argv[5]))
ih = s.download(torrent, save_path)
while True:
    p = s.progress(ih)
    print(json.dumps({"done": p.done, "wanted": p.wanted}), flush=True)
    if p.done >= stop_at * p.wanted and mode == "close":
        s.close()
        print(json.dumps({"closed": True}), flush=True)
        break
    time.sleep(0.05)
"""
)
