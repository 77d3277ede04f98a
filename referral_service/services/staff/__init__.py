"""Staff: review and retry, the console's reads and cancel, the audit trail."""
