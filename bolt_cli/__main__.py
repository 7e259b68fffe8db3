"""`python -m bolt_cli ...`: the `bolt` command without the installed console script."""

from bolt_cli.main import main

main()
