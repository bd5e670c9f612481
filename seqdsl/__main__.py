"""`python -m seqdsl` runs the CLI."""

from .cli import main

raise SystemExit(main())
