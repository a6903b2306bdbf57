"""kdruid's shared library: settings, errors, protocols and storage every role builds on."""

import sys

__version__ = "0.1.0"

# httpx imports its command-line tool (``httpx._main``: click, rich, pygments) whenever those
# are installed, ~4 MB and ~45 ms in every process that imports httpx; kdruid never runs it.
# Marked missing, the import fails and httpx defines its stub ``main`` instead.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
