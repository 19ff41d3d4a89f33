"""``python -m remote_storage`` is the ``remote-storage`` command."""

from remote_storage.cli import main

raise SystemExit(main())
