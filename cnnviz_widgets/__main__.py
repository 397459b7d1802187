"""``python -m cnnviz_widgets``: see :mod:`cnnviz_widgets.cli`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
