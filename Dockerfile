# syntax=docker/dockerfile:1
# The gigmcp gateway: Python 3.13 on Debian 12 slim, with bubblewrap, nftables and iproute2 installed by
# scripts/install (the same script `scripts/run` uses), Node 22 for npm-packaged MCP servers, and an
# unprivileged uid for the sandboxes. Runtime privileges are set in docker-compose.yml and explained in
# docs/deployment.md: the gateway runs as root inside the container because it builds each sandbox's
# network (CAP_NET_ADMIN) and starts bwrap as the sandbox uid; the servers never run as root.
ARG PYTHON_IMAGE=python:3.13-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS node

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="gigmcp" \
      org.opencontainers.image.description="Sandboxed gateway that aggregates isolated MCP servers behind one authenticated endpoint" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/deployment.md" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Node 22 under /usr/local: sandboxes bind /usr read-only, so npm servers find it there.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && node --version && npm --version

# A fixed uid for the sandbox user, so files sandboxes leave on the /data volume have a known owner.
ENV GIG_VENV=/opt/gigmcp/.venv \
    GIG_SANDBOX_UID=10001 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/gigmcp
COPY . .
RUN scripts/install \
    && scripts/install --check \
    && rm -rf /var/lib/apt/lists/* /root/.npm /root/.cache

ENV PATH=/opt/gigmcp/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GIG_LISTEN=:8080 \
    GIG_DATA_DIR=/data \
    GIG_SANDBOX_USER=gigmcp-sb
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 CMD ["/opt/gigmcp/scripts/healthcheck"]
ENTRYPOINT ["gigmcp"]
CMD ["serve"]
