# syntax=docker/dockerfile:1
#
# The gateway's image: the static binary of `make release`, run as a
# non-root user (65532) on a distroless base that holds CA certificates and
# nothing else (no shell, no package manager).
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t gateway .
#   docker run --rm -p 5050:5050 --env-file .env -v gateway-data:/data gateway
#
# .git stays out of the build context (.dockerignore), so the version comes
# in as the VERSION build argument: "dev" without it. Render passes a
# service's environment variables as build arguments, so a Render build is
# stamped with the commit it deploys (RENDER_GIT_COMMIT).
#
# deploy/check (make test) builds the binary with the same make target and
# runs it as this image would: in an empty root holding only the binary, CA
# certificates and /data, as uid 65532, answering /health, stopping on
# SIGTERM; it also parses this file and checks what the image promises.

# The builder's Go must be go.mod's or newer: this image sets
# GOTOOLCHAIN=local. It runs on the build machine's platform and
# cross-compiles for the target's (pure Go, no emulation).
FROM --platform=$BUILDPLATFORM golang:1.26.8-trixie AS build
WORKDIR /src
# The modules first, so that a change of code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG RENDER_GIT_COMMIT
ARG VERSION=${RENDER_GIT_COMMIT:-dev}
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	GOOS="$TARGETOS" GOARCH="$TARGETARCH" make release VERSION="$VERSION" RELEASE_OUT=/out/gateway && \
	mkdir /out/data

# gcr.io/distroless/static-debian13:nonroot, pinned to the digest it had
# when this file was written (the same one several public Dockerfiles pin).
# To move to a newer one: docker buildx imagetools inspect
# gcr.io/distroless/static-debian13:nonroot, and replace the digest.
FROM gcr.io/distroless/static-debian13:nonroot@sha256:1c2c046bc09ed40fad370b599a0b1ae7987f55b01e247cf27a7c27cd97e5bbc7
COPY --from=build /out/gateway /gateway
# /data: the SQLite file's volume, owned by the user that writes it (a new
# named volume takes this owner).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV PORT=5050 DATABASE_URL=/data/gateway.db
VOLUME /data
EXPOSE 5050
# No shell in the image: the binary asks itself (GET 127.0.0.1:$PORT/health).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["/gateway", "health"]
# On SIGTERM the gateway stops accepting, finishes its webhooks and gives
# live calls SHUTDOWN_DRAIN (30 s): give the container longer than that
# (docker stop --time 45, compose's stop_grace_period, Kubernetes'
# terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/gateway"]
CMD ["serve"]
