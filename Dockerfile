# Peon in a container: nginx + peon-api on Debian 12. Build: docker build -t peon .
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libfcgi-dev libcurl4-openssl-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
RUN swift build -c release --static-swift-stdlib --product peon-api \
    && swift build -c release --static-swift-stdlib --product peon \
    && mkdir -p /out && cp .build/release/peon-api .build/release/peon /out/ && strip /out/*

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nginx-light libfcgi0ldbl libsqlite3-0 libcurl4 \
    openssl gettext-base ca-certificates procps tzdata && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/peon
COPY --from=build /out/ .build/release/
COPY scripts scripts
COPY nginx nginx
COPY plans plans
COPY docs/openapi.json docs/openapi.json
ENV PEON_DATA_DIR=/srv/peon/var PEON_BIND=0.0.0.0 PEON_BIN=/opt/peon/.build/release
EXPOSE 8443 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/peon/scripts/stack.sh"]
