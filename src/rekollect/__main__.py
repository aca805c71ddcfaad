"""`python -m rekollect` runs the command line."""

from rekollect.cli.main import main

raise SystemExit(main())
