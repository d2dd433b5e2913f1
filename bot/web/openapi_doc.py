"""The OpenAPI 3.0 document served at /openapi.json: what the HTTP API accepts and answers. Kept as data
next to the routes (bot/web/openai_api.py); tests/web/test_openapi_conformance.py runs schemathesis
against the live server with it, so the two cannot drift apart unnoticed."""

from __future__ import annotations

from typing import Any

from bot.catalog import ModelId
from bot.services.generation import MAX_COUNT, MAX_PROMPT_CHARS
from bot.web.openai_requests import RESPONSE_FORMATS, SIZES


def _error_ref() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid request; `param` names the field",
        401: "Missing, unknown or revoked API key",
        403: "Model above the key's level, or the account is banned",
        404: "No such model or file",
        413: "Request body too large",
        429: "Daily limit reached (shared with the bot) or too many requests waiting",
        502: "Every image service failed (nothing charged)",
        503: "Busy or interrupted (nothing charged)",
        504: "No result in API_TIMEOUT seconds",
    }
    out: dict[str, Any] = {}
    for status in statuses:
        out[str(status)] = {"description": reasons[status], "content": _error_ref()}
        if status == 429:
            out[str(status)]["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}
            }
        if status == 503:
            out[str(status)]["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}
            }
    return out


def _image_fields() -> dict[str, Any]:
    return {
        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
        "model": {"type": "string", "enum": [m.value for m in ModelId], "nullable": True},
        "n": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "nullable": True},
        "size": {"type": "string", "enum": ["auto", *SIZES], "nullable": True},
        "response_format": {"type": "string", "enum": list(RESPONSE_FORMATS), "nullable": True},
        "user": {"type": "string", "nullable": True},
    }


IMAGE_ERRORS = (400, 401, 403, 413, 429, 502, 503, 504)


def openapi_document() -> dict[str, Any]:
    images_ok = {
        "description": "The images, as base64 or as URLs that expire after API_RESULT_TTL seconds",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImagesResponse"}}},
    }
    edit_fields = _image_fields()
    edit_fields["n"] = {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}
    edit_fields = {
        "image": {"type": "string", "format": "binary", "description": "PNG, JPEG or WebP, at most 20 MB"},
        **{k: v for k, v in edit_fields.items() if k != "user"},
    }
    for name in ("model", "size", "response_format"):
        edit_fields[name] = {k: v for k, v in edit_fields[name].items() if k != "nullable"}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Tiered image bot: OpenAI-compatible Images API",
            "version": "1.0.0",
            "description": "Keys come from /apikey in the bot; a key acts as its user (level, daily limit, ban).",
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "Models the key's level allows",
                    "responses": {
                        "200": {
                            "description": "The models",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelList"}}},
                        },
                        **_errors(401, 403, 503),
                    },
                }
            },
            "/v1/models/{model}": {
                "get": {
                    "operationId": "retrieveModel",
                    "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {
                            "description": "The model",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Model"}}},
                        },
                        **_errors(401, 403, 404, 503),
                    },
                }
            },
            "/v1/images/generations": {
                "post": {
                    "operationId": "createImage",
                    "summary": "Images from a prompt",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/CreateImageRequest"}}
                        },
                    },
                    "responses": {"200": images_ok, **_errors(*IMAGE_ERRORS)},
                }
            },
            "/v1/images/edits": {
                "post": {
                    "operationId": "createImageEdit",
                    "summary": "A photo changed as the prompt says",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image", "prompt"],
                                    "properties": edit_fields,
                                }
                            }
                        },
                    },
                    "responses": {"200": images_ok, **_errors(*IMAGE_ERRORS)},
                }
            },
            "/v1/images/files/{file_id}": {
                "get": {
                    "operationId": "getImageFile",
                    "summary": "A `url` result; the id is the credential and expires",
                    "security": [],
                    "parameters": [{"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {
                            "description": "The image",
                            "content": {
                                mime: {"schema": {"type": "string", "format": "binary"}}
                                for mime in ("image/png", "image/jpeg", "image/webp")
                            },
                        },
                        **_errors(404, 503),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type", "param", "code"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "param": {"type": "string", "nullable": True},
                                "code": {"type": "string", "nullable": True},
                            },
                        }
                    },
                },
                "CreateImageRequest": {
                    "type": "object",
                    "required": ["prompt"],
                    "properties": _image_fields(),
                },
                "Image": {
                    "type": "object",
                    "properties": {
                        "b64_json": {"type": "string"},
                        "url": {"type": "string"},
                        "revised_prompt": {"type": "string", "nullable": True},
                    },
                },
                "ImagesResponse": {
                    "type": "object",
                    "required": ["created", "data"],
                    "properties": {
                        "created": {"type": "integer"},
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Image"}},
                    },
                },
                "Model": {
                    "type": "object",
                    "required": ["id", "object", "created", "owned_by"],
                    "properties": {
                        "id": {"type": "string"},
                        "object": {"type": "string", "enum": ["model"]},
                        "created": {"type": "integer"},
                        "owned_by": {"type": "string"},
                    },
                },
                "ModelList": {
                    "type": "object",
                    "required": ["object", "data"],
                    "properties": {
                        "object": {"type": "string", "enum": ["list"]},
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
                    },
                },
            },
        },
    }
