# Multi-stage build on Debian bookworm (FFmpeg 5.1, the version ffmpeg-next 9 is built for).
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
      pkg-config clang libclang-dev libespeak-ng-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY agents agents
COPY src src
COPY config config
COPY migrations migrations
COPY benches benches
RUN cargo build --release --locked --bin aiprod

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 \
      fonts-dejavu-core fonts-noto-core fonts-noto-cjk ca-certificates espeak-ng apertium apertium-eng-spa \
      ffmpeg pocketsphinx pocketsphinx-en-us \
      tesseract-ocr tesseract-ocr-jpn tesseract-ocr-chi-sim tesseract-ocr-kor tesseract-ocr-ara \
      tesseract-ocr-heb tesseract-ocr-fra tesseract-ocr-deu tesseract-ocr-spa tesseract-ocr-ita tesseract-ocr-por \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/aiprod aiprod \
 && install -d -o aiprod -g aiprod /var/lib/aiprod/data /var/lib/aiprod/artifacts
COPY --from=build /src/target/release/aiprod /usr/local/bin/aiprod
COPY config /etc/aiprod
USER aiprod
WORKDIR /var/lib/aiprod
ENV AIPROD_CONFIG=/etc/aiprod/v33.json AIPROD_DATA_DIR=/var/lib/aiprod/data
ENTRYPOINT ["aiprod"]
CMD ["--help"]
