"""interop: client libraries x broker targets x scenarios (`python -m interop run BROKER`; see interop/README.md)."""
