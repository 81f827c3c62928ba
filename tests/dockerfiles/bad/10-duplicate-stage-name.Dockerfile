FROM node:20 AS build
RUN npm ci && npm run build

FROM golang:1.22 AS build
RUN go build -o /out/api ./cmd/api

FROM alpine:3.20
COPY --from=build /out/api /usr/local/bin/api
