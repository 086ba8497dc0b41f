"""One Flask blueprint per change source: verify, parse, queue, answer."""
