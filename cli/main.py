"""hubless command line (filled in by the CLI issue)."""


def main() -> None:
    raise SystemExit("hubless: the command line is not built yet")
