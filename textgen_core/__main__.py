"""`python -m textgen_core COMMAND ...`: the `textgen` command (runtime/commands.py)."""

from runtime.commands import main

raise SystemExit(main())
