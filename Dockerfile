# syntax=docker/dockerfile:1
# One image for every role: `python -m bot` (front end + in-process workers unless WORKERS=0),
# `python -m bot worker`, `python -m bot migrate`. docker-compose.yml picks the role per service.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the package is built from (.dockerignore keeps .env, data/ and tests out of the context).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY keyboards ./keyboards
COPY models ./models
COPY migrations ./migrations
RUN pip install ".[postgres,redis]"

FROM python:3.11-slim
# METRICS=1: every role serves /healthz (and /metrics) on WEB_PORT, which the HEALTHCHECK probes;
# inside a container the port is private unless published.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    METRICS=1 \
    PATH=/opt/venv/bin:$PATH
RUN useradd --system --user-group --uid 10001 --home-dir /app --shell /usr/sbin/nologin bot \
    && mkdir -p /app/data \
    && chown bot:bot /app/data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER bot
EXPOSE 8080
# slim has no curl: a stdlib-only probe of http://127.0.0.1:$WEB_PORT/healthz (exit 1 on 503).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot.web.healthcheck"]
CMD ["python", "-m", "bot"]
