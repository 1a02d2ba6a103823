"""`python -m cp_pi` is the same as the `cp-pi` command."""

from cp_pi.commands.cli import main

raise SystemExit(main())
