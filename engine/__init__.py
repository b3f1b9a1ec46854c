"""The engine: matching payments to encounters, detecting overpayments and duplicate payments,
and deciding refunds and recoupments.  It reads what ``parsers`` produced and never reads bytes.

The store, the detectors and the writers arrive with the credit-balance engine (``edirecon run``).
"""
