"""``python -m remote_storage.loadgen URL`` is ``remote-storage loadgen URL``."""

from remote_storage.loadgen.cli import main

raise SystemExit(main())
