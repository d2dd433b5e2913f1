"""Tiered image-generation Telegram bot."""
