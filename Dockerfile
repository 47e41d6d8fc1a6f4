# syntax=docker/dockerfile:1
# Slim, non-root image of the bot. Build: docker build -t chatops-bot .
FROM python:3.11-slim AS build
WORKDIR /src
# Reproducible: every dependency (and setuptools, to build the bot) pinned with its hashes in
# requirements.lock, made by scripts/lock; pip refuses anything else.
COPY requirements.lock ./
RUN python -m venv /opt/chatops \
    && /opt/chatops/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
# Only what `chatops-bot run` needs: .dockerignore leaves bot/console/ (the terminal front end
# and its Slack double) out, and no extras are installed.
COPY bot ./bot
COPY commands ./commands
RUN /opt/chatops/bin/pip install --no-cache-dir --no-deps --no-build-isolation .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 DATABASE_URL=sqlite:////data/chatops.db \
    PATH=/opt/chatops/bin:$PATH
COPY --from=build /opt/chatops /opt/chatops
RUN useradd --system --uid 10001 --home-dir /data --create-home chatops
USER 10001
WORKDIR /data
EXPOSE 3000
# /livez: the process answers (/readyz also asks the database, Redis and Slack: for monitoring).
HEALTHCHECK --interval=30s --timeout=3s \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/livez', timeout=2).status != 200)"]
# A stop takes up to 44 s (README: "Give it 50 s to stop"): run with --stop-timeout 50, or
# Compose's stop_grace_period: 50s; Docker's default kills it after 10 s.
ENTRYPOINT ["chatops-bot"]
CMD ["run", "--host", "0.0.0.0", "--port", "3000"]
