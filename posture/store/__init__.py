"""Storing: facts from collection, bulk loads, and evaluation output."""
