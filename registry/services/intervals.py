"""How often the daemon acts, in seconds: constants only, so the CLI can show them in
`--help` without importing the services (spec §8.5, §8.7)."""

#: Key holders re-sign and everyone re-puts kept records this often (BEP-44 asks for hourly).
REPUBLISH_EVERY = 30 * 60.0
#: BEP-44 nodes drop items after about two hours: re-putting less often keeps nothing alive.
RECORD_LIFETIME = 2 * 3600.0
#: Followed publishers and models are polled this often by default.
POLL_EVERY = 600.0
