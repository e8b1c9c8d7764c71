# syntax=docker/dockerfile:1
# The image of one dialtone service, chosen by the SERVICE build argument:
#   media-gateway         SIP/RTP, codecs, DTMF, the control API; the `media` extra.
#                         No speech engines or models: those live in the speech gateway's image.
#   speech-gateway        VAD, ASR (faster-whisper / whisper.cpp) and TTS (piper); the `speech` extra.
#                         The models ship in its PyPI packages; nothing is downloaded at run time.
#   conversation-runtime  the dialog FSM (CEL conditions, Redis or SQLite state); the `runtime` extra.
#   integration-gateway   REST calls to the customer's backends (httpx, retries, breakers, Redis
#                         state); the `integration` extra.
# Each image installs only its own service's extra of the dialtone distribution, and runs
# `dialtone <SERVICE>`. Any other SERVICE (or none) stops the build with the valid names.
#
# Build from the repository root (docs/kubernetes.md):
#   docker build --build-arg SERVICE=media-gateway -t REGISTRY/dialtone/media-gateway:TAG .
#
# The base is pinned to an exact Python patch release; pin its digest too in your registry
# mirror (PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:...) for byte-for-byte rebuilds.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- service: what SERVICE means, the one table of it. Writes, in /service, the extra to
# install, the Debian packages its wheels load at run time, and the entrypoint script.
FROM ${PYTHON_IMAGE} AS service
ARG SERVICE
WORKDIR /service
RUN case "$SERVICE" in \
      media-gateway)        extra=media;       packages="libopus0" ;; \
      speech-gateway)       extra=speech;      packages="espeak-ng flite libgomp1" ;; \
      conversation-runtime) extra=runtime;     packages="" ;; \
      integration-gateway)  extra=integration; packages="" ;; \
      *) echo "unknown SERVICE '$SERVICE': build with --build-arg SERVICE=NAME, NAME one of" \
              "media-gateway speech-gateway conversation-runtime integration-gateway" >&2; \
         exit 1 ;; \
    esac \
 && echo "$extra" > extra \
 && echo "$packages" > packages \
 && printf '#!/bin/sh\nexec dialtone %s "$@"\n' "$SERVICE" > entrypoint \
 && chmod 0755 entrypoint

# --- build: a virtual environment with dialtone[<extra>] (dialtone.v1 is generated from proto/ here)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/dialtone
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY proto ./proto
COPY services ./services
RUN --mount=type=bind,from=service,source=/service,target=/service \
    /opt/dialtone/bin/pip install --upgrade pip setuptools wheel \
 && /opt/dialtone/bin/pip install ".[$(cat /service/extra)]" \
 && /opt/dialtone/bin/python -m compileall -q /opt/dialtone
# The speech gateway's optional end-of-turn model (vad.turn_model: smart-turn), checked by its sha256.
COPY scripts/fetch_smart_turn.py ./scripts/
RUN --mount=type=bind,from=service,source=/service,target=/service \
    if [ "$(cat /service/extra)" = speech ]; then /opt/dialtone/bin/python scripts/fetch_smart_turn.py; fi

# --- runtime: the environment only, no compilers, no sources, no pip cache
FROM ${PYTHON_IMAGE} AS runtime
# Shared libraries the service's wheels load at run time (none for the runtime and the
# integration gateway: no apt-get at all there).
RUN --mount=type=bind,from=service,source=/service,target=/service \
    packages="$(cat /service/packages)"; \
    if [ -n "$packages" ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \
      && rm -rf /var/lib/apt/lists/*; \
    fi
RUN groupadd --system --gid 10001 dialtone \
 && useradd --system --uid 10001 --gid dialtone --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin dialtone
COPY --from=build /opt/dialtone /opt/dialtone
# `exec dialtone <SERVICE> "$@"`: the service's process replaces the script (PID 1, signals).
COPY --from=service /service/entrypoint /opt/dialtone/bin/dialtone-service
# Read-only root filesystem: bytecode is precompiled above, and HOME/caches point at /tmp
# (an emptyDir in the chart).
ENV PATH=/opt/dialtone/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache
ARG SERVICE
LABEL org.opencontainers.image.title="dialtone ${SERVICE}"
USER 10001:10001
WORKDIR /tmp
# Every service's ports, as in charts/dialtone/values.yaml (EXPOSE is documentation only; the
# chart declares each container's own ports):
#   media-gateway        grpc 7001, metrics 9101, http 8080, sip 5060 (udp and tcp), webrtc 8088
#   speech-gateway       grpc 7002, metrics 9102
#   conversation-runtime grpc 7003, metrics 9103
#   integration-gateway  grpc 7004, metrics 9104
EXPOSE 7001 9101 8080 5060/udp 5060/tcp 8088 \
       7002 9102 \
       7003 9103 \
       7004 9104
ENTRYPOINT ["dialtone-service"]
CMD ["--config", "/etc/dialtone/config/config.yaml"]
