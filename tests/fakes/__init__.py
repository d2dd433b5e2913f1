"""Fake upstream servers for tests: they listen on 127.0.0.1 only, so no test reaches the internet."""
