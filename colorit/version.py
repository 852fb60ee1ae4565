"""ColorIt's version, in a module of its own so that the lowest layers (colorit.provenance writes it
into every output) can import it without importing the package's public API."""

__version__ = "0.1.0"
