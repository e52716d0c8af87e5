"""`python -m hubless.cli`: the same as the `hubless` command."""

from .main import main

main()
