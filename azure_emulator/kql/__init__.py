"""The KQL subset the emulator evaluates (see parser.py for the grammar)."""

from __future__ import annotations

from azure_emulator.kql.compiler import CompiledQuery, Row, Schema, compile_query
from azure_emulator.kql.errors import KqlError

__all__ = ["CompiledQuery", "KqlError", "Row", "Schema", "compile_query"]
