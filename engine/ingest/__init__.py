"""Ingestion: parsed documents mapped to rows of the store (idempotent per transaction set)."""
