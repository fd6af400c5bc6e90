"""Tests of the conformance suite's harness: raw client, targets, plugin and results file."""
