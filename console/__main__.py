"""``python -m console``: how Briefcase starts the packaged app."""

from console.cli import main

raise SystemExit(main())
