"""cp-pi: an OCPP 1.6J charge point controller for the Raspberry Pi."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cp-pi")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
