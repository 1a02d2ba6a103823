"""Firmware management's file work: transfers, releases, the side-by-side layout, diagnostics."""
