"""Shared by every domain; imports no domain."""
