"""Helpers shared by the test folders of both environments (server and client)."""
