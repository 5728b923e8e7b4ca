# Peon in a container: nginx + peon-api + peon-scheduler on Debian 12 (and peon-agent, Peon's node
# agent, which Swarm and compose.yaml run from this same image with their own command), driving the host's Docker
# engine through its socket (compose.yaml). Build: docker build -t peon:local .
#
# The build stage compiles in the Swift image. Where that image cannot be pulled, build on the host
# and pass --build-arg PEON_PREBUILT=1: the stage is then plain Debian and takes the binaries from
# .peon-image/bin (and, for debug builds, the Swift runtime libraries from .peon-image/lib);
# scripts/image.sh assembles that folder and builds.
ARG PEON_PREBUILT=
ARG PEON_PREBUILT_BASE=${PEON_PREBUILT:+debian:bookworm-slim}
ARG PEON_BUILD_IMAGE=${PEON_PREBUILT_BASE:-swift:6.1-bookworm}

FROM ${PEON_BUILD_IMAGE} AS build
ARG PEON_PREBUILT
WORKDIR /src
# Package.swift is always there: the wildcard only adds .peon-image when the context has it.
COPY Package.swift .peon-imag[e] prebuilt/
COPY Package.swift Package.resolve[d] ./
COPY Sources Sources
# SwiftPM checks every target's folder, test targets' too.
COPY Tests Tests
RUN set -eu; mkdir -p /out/bin /out/lib; \
    if [ -n "${PEON_PREBUILT:-}" ]; then \
      [ -x prebuilt/bin/peon-scheduler ] || { echo "PEON_PREBUILT: no binaries in .peon-image/bin" >&2; exit 1; }; \
      cp -a prebuilt/bin/. /out/bin/; [ ! -d prebuilt/lib ] || cp -a prebuilt/lib/. /out/lib/; \
    else \
      apt-get update && apt-get install -y --no-install-recommends libfcgi-dev libcurl4-openssl-dev libsqlite3-dev \
        libarchive-dev libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*; \
      for p in peon-api peon-scheduler peon peon-agent; do swift build -c release --static-swift-stdlib --product "$p"; done; \
      cp .build/release/peon-api .build/release/peon-scheduler .build/release/peon .build/release/peon-agent /out/bin/ && strip /out/bin/*; \
    fi

FROM debian:bookworm-slim
# nginx-light has the realip and http2 modules; tini reaps orphans and forwards SIGTERM/SIGHUP;
# curl and jq let the entrypoint ask the engine where the data dir is mounted from; iptables is the
# node agent's, for the games' egress rules; certbot obtains and renews PEON_ACME_DOMAIN's certificate.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
    libfcgi0ldbl libsqlite3-0 libcurl4 libarchive13 libssl3 openssl gettext-base ca-certificates procps curl jq tini tzdata iptables \
    certbot \
    && rm -rf /var/lib/apt/lists/* \
    # uid 1000 is also the game servers' user: the files it makes are theirs without chown.
    && useradd --uid 1000 --user-group --home-dir /opt/peon --no-create-home --shell /usr/sbin/nologin peon
WORKDIR /opt/peon
COPY --from=build /out/bin/ /opt/peon/bin/
COPY --from=build /out/lib/ /opt/peon/lib/
# A debug build's Swift runtime (empty for the static release build).
RUN echo /opt/peon/lib > /etc/ld.so.conf.d/peon.conf && ldconfig && ln -s /opt/peon/bin/peon /usr/local/bin/peon \
    && /opt/peon/bin/peon --help >/dev/null
COPY scripts scripts
COPY nginx nginx
COPY plans plans
COPY images images
COPY docs docs
COPY web web
COPY README.md ./
ENV PEON_DATA_DIR=/srv/peon/var PEON_BIND=0.0.0.0 PEON_BIN=/opt/peon/bin PEON_HOST_DIR=auto \
    PEON_BUNDLED_PLANS=/opt/peon/plans PEON_IMAGES_DIR=/opt/peon/images
EXPOSE 8443 8080
# 401 (no key) or 200 both prove nginx, the TLS pair and an API worker answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:${PEON_HTTPS_PORT:-8443}/api/v1/orchestrator") \
        && { [ "$code" = 200 ] || [ "$code" = 401 ]; }
STOPSIGNAL SIGTERM
# Starts as root only to hand the data dir to peon and find the socket's group; the stack runs as peon.
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/peon/scripts/container.sh"]
