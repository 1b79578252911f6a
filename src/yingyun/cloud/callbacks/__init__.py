"""Status callbacks to partners (contract §3.4): a durable outbox (events.py) and its delivery
worker (dispatcher.py)."""
