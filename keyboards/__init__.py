"""Reply and inline keyboards, and the CallbackData they carry."""
