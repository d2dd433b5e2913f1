"""Image providers: small adapters behind one interface (see base.py)."""
