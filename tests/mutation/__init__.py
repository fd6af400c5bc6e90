"""Mutation testing of refbroker's core and codec (`tox -e mutation`); not a test package."""
