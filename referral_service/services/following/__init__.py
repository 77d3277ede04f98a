"""Following a referral: referrers' Subscriptions (Subscriptions R4 Backport, rest-hook)."""
