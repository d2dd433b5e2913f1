"""What the user reads about an edit or an upscale: the caption of the result, and why none came."""

from __future__ import annotations

import html

from aiogram.utils.i18n import gettext as _

from bot.photo_jobs import PHOTO_TOO_LARGE, PHOTO_UNAVAILABLE, PHOTO_UNREADABLE
from bot.services.generation import FailureReason, GeneratedImage, GenerationFailed
from bot.services.jobs import JobView
from bot.texts import CAPTION_LIMIT, fit_html, model_title
from models import JobKind


def photo_caption(job: JobView, image: GeneratedImage, left: int | None, limit: int) -> str:
    """What was done and by which model, the instruction (escaped, cut to fit) and what is left today."""
    upstream = html.escape(image.model.split(":", 1)[0].rsplit("/", 1)[-1])
    if job.kind is JobKind.UPSCALE:
        head = "⬆️ <b>" + html.escape(_("Upscaled ×2")) + f"</b> <i>({upstream})</i>\n"
        instruction = ""
    else:
        done = _("Edited with {model}").format(model=model_title(image.step))
        head = "✏️ <b>" + html.escape(done) + f"</b> <i>({upstream})</i>\n"
        instruction = job.prompt
    if left is None:
        tail = "\n" + _("Images left today: unlimited")
    else:
        tail = "\n" + _("Images left today: {left} of {limit}").format(left=left, limit=limit)
    if not instruction:
        return head + tail.lstrip("\n")
    return fit_html(head, instruction, tail, CAPTION_LIMIT, wrap="📝 {}")


def photo_failure_text(job: JobView, failure: GenerationFailed) -> str:
    """Why an edit or upscale made nothing; always with "not charged", since nothing was."""
    if failure.detail == PHOTO_TOO_LARGE:
        return _("This photo is too large for me to work on. Nothing was charged; please send a smaller one.")
    if failure.detail in (PHOTO_UNAVAILABLE, PHOTO_UNREADABLE):
        return _("I could not read this photo. Nothing was charged; please send it again.")
    if job.kind is JobKind.UPSCALE:
        if failure.reason is FailureReason.NO_PROVIDER:
            return _("Upscaling is not available right now. Nothing was charged.")
        return _("Sorry, the upscaler failed just now. Your limit was not charged; please try again later.")
    if failure.reason is FailureReason.NO_PROVIDER:
        return _("Editing is not available right now. Nothing was charged.")
    if failure.reason is FailureReason.INVALID_REQUEST:
        return _("That instruction is too long or empty. Please send a shorter text.")
    return _("Sorry, every image editor failed just now. Your limit was not charged; please try again later.")
