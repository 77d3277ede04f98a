"""The clinic EHR as a peer: its orders taken in (webhooks, reconciliation, subscriptions),
outcomes written back, demo seeding."""
