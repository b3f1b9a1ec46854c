"""The engine: the store, ingestion, matching payments to encounters, detecting overpayments and
duplicate payments, deciding refunds and recoupments, and writing the outputs of ``edirecon run``.

It reads what ``parsers`` produced and never reads X12 bytes itself.  See docs/ARCHITECTURE.md.
"""
