"""kdruid's shared library: settings, errors, protocols and storage every role builds on."""

__version__ = "0.1.0"
