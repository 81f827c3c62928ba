FROM golang:1.22 build
WORKDIR /src
COPY . .
RUN go build -o /out/app .
CMD ["/out/app"]
