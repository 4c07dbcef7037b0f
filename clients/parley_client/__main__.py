"""`python -m parley_client`: the `parley` CLI where its console script is not installed."""

from parley_client.cli import main

main()
