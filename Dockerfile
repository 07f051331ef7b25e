# Minimal image for now; the hardened multi-stage build is tracked separately.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY knowledge ./knowledge
RUN pip install --no-cache-dir .
USER 10001
ENTRYPOINT ["acrcheck"]
CMD ["serve"]
