# acrcheck container image: the Slack bot and CLI for troubleshooting ACR network problems.
#
#   docker build -t acrcheck .
#   docker run --rm acrcheck diagnose "…pasted error…"      # offline, no settings needed
#   docker run -e SLACK_BOT_TOKEN=… -e SLACK_APP_TOKEN=… acrcheck        # Slack bot (Socket Mode)
#
# Two stages: "build" makes /opt/venv with scripts/build-env.sh (hash-checked lock + project
# wheel; tests/ship/test_image_env.py runs the same script), the final stage copies only that
# venv onto the slim base (the build stage compiles the nearest-case search, bot/engine/_knn.c).
# No compiler, no pip cache, no sources in the final image; runs as uid 10001.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# A C compiler for the project's one extension (bot/engine/_knn.c, the nearest-case search); this
# stage is discarded, so the final image has no compiler. Debian's gcc is not pinned: its version
# moves with every point release of the base image, and the extension needs nothing version-specific.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY requirements-image.lock pyproject.toml README.md ./
COPY scripts/build-env.sh scripts/build-env.sh
COPY bot bot
COPY handlers handlers
COPY knowledge knowledge
RUN PYTHON=python sh scripts/build-env.sh /opt/venv /src \
    && /opt/venv/bin/acrcheck cards >/dev/null \
    && /opt/venv/bin/python -c "from bot.diagnose import preload; preload()"  # validates the cards; writes the compiled caches of the cards and of the learned artefact

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="acrcheck" \
      org.opencontainers.image.description="Troubleshoots Azure Container Registry network problems, in Slack and on the command line" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ACRCHECK_LOG_FORMAT=json \
    ACRCHECK_PORT=3000 \
    ACRCHECK_DATABASE_URL=sqlite:////data/acrcheck.db
RUN groupadd --system --gid 10001 acrcheck \
    && useradd --system --uid 10001 --gid acrcheck --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin acrcheck \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "bot.service.healthcheck"]
ENTRYPOINT ["acrcheck"]
CMD ["serve"]
