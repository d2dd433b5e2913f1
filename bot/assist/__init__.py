"""Text and vision models through the Hugging Face router's OpenAI-compatible chat endpoint.

Like `bot.providers`, nothing here knows aiogram, SQLAlchemy or a service.
"""
