"""interop: broker targets x client libraries x scenarios (not built yet; see the design document)."""
