# Slipway in a container: one static binary on a distroless base.
FROM node:20-bookworm-slim AS static
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=static /src/node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/slipway ./cmd/server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/slipway /usr/local/bin/slipway
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/slipway"]
CMD ["serve"]
