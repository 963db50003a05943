"""netc: a compiler for declarative neural-network spec files."""

__version__ = "0.1.0"
