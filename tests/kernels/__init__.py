"""Kernel tests (a package so test modules can share input builders)."""
