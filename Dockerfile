# certgate's container image.
#
#   docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) -t certgate .
#   docker run -d -p 127.0.0.1:3000:3000 -v certgate-data:/var/lib/certgate \
#     -v /etc/certgate/secrets:/run/secrets:ro \
#     -e CERTGATE_ADMIN_TOKEN_FILE=/run/secrets/admin-token \
#     -e MTLS_VERIFY_SECRET_FILE=/run/secrets/verify-secret certgate
#
# certgate listens on all interfaces inside the container: publish the port only where the
# proxy reaches it. Secrets are best mounted as files (the *_FILE variables); a SIGHUP
# (`docker kill -s HUP`) re-reads them.

FROM docker.io/library/rust:1.89-slim-bookworm AS build
ARG REVISION=""
WORKDIR /src
COPY . .
RUN CERTGATE_BUILD_REVISION="$REVISION" cargo build --release --locked --bin certgate

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/certgate \
        --shell /usr/sbin/nologin certgate \
    && install -d -o certgate -g certgate -m 0750 /var/lib/certgate
COPY --from=build /src/target/release/certgate /usr/bin/certgate
ENV CERTGATE_LISTEN=0.0.0.0:3000 \
    CERTGATE_DATA_DIR=/var/lib/certgate
USER certgate
WORKDIR /var/lib/certgate
VOLUME ["/var/lib/certgate"]
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["/usr/bin/certgate", "healthcheck"]
ENTRYPOINT ["/usr/bin/certgate"]
CMD ["serve"]
