# syntax=docker/dockerfile:1
# sessionService on Debian 12 (bookworm).
#
#   docker build -t sessionservice .                          # the service (default target)
#   docker build --target gateway -t sessionservice-gateway . # nginx with deploy/nginx.conf
#
# Stage `build` installs the build packages with the project's own
# scripts/deps.sh (the list CI installs) and runs `make`. Stage `runtime`
# holds only the five executables and the shared libraries they link; its
# package list is checked against `ldd` of the built binaries by
# scripts/image-check.sh (CI runs it), so keep the runtime apt-get line on
# one logical line, one package per word. Every apt-get RUN of a shipped
# stage ends with `apt-get clean` and removes the lists, in the same RUN:
# debian:12-slim's apt hook (docker-clean) would do part of it, a base without
# the hook would not, and a later RUN cannot take bytes out of a layer.
# scripts/image-test.sh builds these images with podman, runs the Compose
# stack, and checks the runtime image holds no compiler, lists or caches.

# ---------------------------------------------------------------------------
FROM debian:12-slim AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh run && rm -rf /var/lib/apt/lists/*
COPY Makefile ./
COPY src/ src/
COPY bin/ bin/
RUN make -j"$(nproc)" all

# ---------------------------------------------------------------------------
# The session check inside nginx (docs/DEPLOY.md 2.6), built against
# Debian's nginx-dev: the headers of the very nginx the gateway installs
# (nginx/build.sh fetches the package of this nginx's version; its configure
# probes for PCRE2 and zlib).
FROM build AS nginx-module
COPY nginx/ nginx/
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light libpcre2-dev zlib1g-dev \
 && make nginx-module \
 && rm -rf /var/lib/apt/lists/*

# ---------------------------------------------------------------------------
# The gateway: Debian's nginx-light (1.22, with auth_request) running
# deploy/nginx.conf, rendered at start by deploy/render-nginx.sh (see
# docker-compose.yml). Unprivileged: runs as www-data, writes only below
# /tmp/gateway, listens on 8080. It also carries the session check inside
# nginx, /usr/lib/nginx/modules/ngx_http_sessiond_module.so, off unless the
# render is given --module and --module-config (DEPLOY.md 2.6: for the
# embedded store, with the services' store volume and settings file mounted
# in and the container run as the services' user, 10001, as LMDB readers
# write to the store's lock file); libjansson4 and liblmdb0 are what it
# links beyond nginx's own libraries.
FROM debian:12-slim AS gateway
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light libjansson4 liblmdb0 busybox \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && rm -f /etc/nginx/sites-enabled/default
COPY --from=nginx-module /src/build/ngx_http_sessiond_module.so /usr/lib/nginx/modules/
COPY deploy/nginx.conf deploy/render-nginx.sh /etc/sessiond-gateway/
USER www-data
EXPOSE 8080
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD busybox wget -q -Y off -O /dev/null http://127.0.0.1:8080/healthz || exit 1
CMD ["/bin/sh", "-c", "mkdir -p /tmp/gateway && sh /etc/sessiond-gateway/render-nginx.sh --template /etc/sessiond-gateway/nginx.conf > /tmp/gateway/nginx.conf && exec nginx -p /tmp/gateway/ -c /tmp/gateway/nginx.conf -e stderr -g 'daemon off;'"]

# ---------------------------------------------------------------------------
# The service (default target). One image, five executables: CMD sessiond
# serves every route; createSession, readSession and closeSession are the
# split processes; sessionctl is the operator's tool.
FROM debian:12-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# libmicrohttpd12 libjansson4 libjwt0 libssl3 liblmdb0 libhiredis0.14: what
# the executables link (libjwt0 brings libb64-0d, libmicrohttpd12 brings
# libgnutls30); busybox: `wget` for HEALTHCHECK (one 800 KiB binary that needs
# only libc, where curl would bring libcurl and a dozen libraries).
RUN apt-get update && apt-get install -y --no-install-recommends libmicrohttpd12 libjansson4 libjwt0 libssl3 liblmdb0 libhiredis0.14 busybox \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 sessiond \
 && useradd --uid 10001 --gid sessiond --home-dir /var/lib/sessiond --no-create-home \
        --no-log-init --shell /usr/sbin/nologin sessiond \
 && mkdir -p /var/lib/sessiond \
 && chown sessiond:sessiond /var/lib/sessiond \
 && chmod 0700 /var/lib/sessiond
COPY --from=build /src/build/sessiond /src/build/createSession /src/build/readSession /src/build/closeSession /src/build/sessionctl /usr/local/bin/
# HOST: every interface of the container; STORE_URL: the volume below.
# JWT_SECRET has no default: the process refuses to start without one.
# WORKDIR / holds no .env (the service reads ./.env when there is one).
ENV HOST=0.0.0.0 \
    PORT=8080 \
    STORE_URL=lmdb:///var/lib/sessiond
VOLUME ["/var/lib/sessiond"]
WORKDIR /
USER 10001:10001
EXPOSE 8080
# SIGTERM: stop accepting, finish requests in flight (at most 10 s), exit 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD busybox wget -q -Y off -O /dev/null "http://127.0.0.1:${PORT}/healthz" || exit 1
CMD ["sessiond"]
