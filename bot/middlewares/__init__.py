"""Outer middlewares: who the user is, which language they speak, which tasks are in flight."""
