"""aiogram routers, one per feature. Built by factories so tests can make many dispatchers."""

from __future__ import annotations

from aiogram import Router

from handlers import admin, apikey, common, errors, fallback, generate, membership, payments, profile, start


def build_routers() -> list[Router]:
    """In order: the catch-all fallback router must come last."""
    return [
        errors.router_factory(),
        common.router_factory(),
        start.router_factory(),
        profile.router_factory(),
        payments.router_factory(),
        membership.router_factory(),
        admin.router_factory(),
        apikey.router_factory(),
        generate.router_factory(),
        fallback.router_factory(),
    ]
