"""aiogram routers, one per feature. Built by factories so tests can make many dispatchers."""

from __future__ import annotations

from aiogram import Router

from handlers import (
    admin,
    common,
    errors,
    fallback,
    generate,
    history,
    membership,
    payments,
    profile,
    results,
    start,
)


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
        results.router_factory(),
        history.router_factory(),
        generate.router_factory(),
        fallback.router_factory(),
    ]
