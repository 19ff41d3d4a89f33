"""``python -m remote_storage.check URL``: ``remote-storage check`` on its own."""

import sys

from remote_storage.check.cli import main

sys.exit(main())
