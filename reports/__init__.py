"""reports: the HTML compliance report from conformance and interop results (`python -m reports build|run`),
and the allure report (see reports/README.md)."""
