"""Scheduling domain: the clinic's chairs and hours, booking windows and slot choice (no I/O)."""
