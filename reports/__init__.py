"""reports: HTML compliance reports from conformance results (not built yet)."""
