"""Telegram's refundStarPayment behind the `Refunder` interface of bot.services.refunds."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNetworkError, TelegramServerError

from bot.services.refunds import RefundAlreadyDone, RefundNoAnswer, RefundRejected

ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"  # refundStarPayment's answer when it was done before


class StarRefunder:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def refund(self, user_id: int, charge_id: str) -> None:
        try:
            await self._bot.refund_star_payment(user_id=user_id, telegram_payment_charge_id=charge_id)
        except TelegramBadRequest as exc:
            if ALREADY_REFUNDED in exc.message:
                raise RefundAlreadyDone from None
            raise RefundRejected(f"{type(exc).__name__}: {exc.message}") from None
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise RefundNoAnswer(type(exc).__name__) from None
        except TelegramAPIError as exc:
            raise RefundRejected(f"{type(exc).__name__}: {exc.message}") from None
