"""Booking: the schedule port and the worker's book and cancel jobs."""
