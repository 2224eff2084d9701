"""``python -m firesmoke``: the command line."""

from firesmoke.cli.main import main

raise SystemExit(main())
