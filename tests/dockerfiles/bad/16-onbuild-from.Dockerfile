FROM alpine:3.20
WORKDIR /src
ONBUILD COPY . /src
ONBUILD FROM alpine:3.20
CMD ["sh"]
