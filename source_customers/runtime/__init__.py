"""Machinery no manifest names, installed once per process: the request deadline,
progress, masked output (`hooks.install`)."""
