"""Scaled end-to-end tests: several real bot processes sharing PostgreSQL and Redis."""
