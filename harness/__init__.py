"""imagebench: measure Docker best practices with paired image variants."""

__version__ = "0.1.0"

__all__ = ["__version__"]
