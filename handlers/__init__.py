"""aiogram routers, one per feature. Built by factories so tests can make many dispatchers."""

from __future__ import annotations

from aiogram import Router

from handlers import (
    admin,
    apikey,
    common,
    describe,
    edit,
    errors,
    fallback,
    generate,
    history,
    inline,
    membership,
    payments,
    profile,
    prompthelp,
    results,
    settings,
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
        describe.router_factory(),
        prompthelp.router_factory(),
        settings.router_factory(),  # before generate: a typed seed or negative prompt is not a prompt
        edit.router_factory(),  # before generate: an instruction or a reply is not a prompt
        results.router_factory(),
        history.router_factory(),
        apikey.router_factory(),
        generate.router_factory(),
        inline.router_factory(),
        fallback.router_factory(),
    ]
