# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download \
    # verify checksums against go.sum before building anything
    && go mod verify

COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \

    go build -trimpath -ldflags="-s -w" -o /out/shortlink ./cmd/shortlink

FROM scratch
COPY --from=build --chmod=0755 /out/shortlink /shortlink
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/shortlink"]
CMD ["--listen", ":8080"]
