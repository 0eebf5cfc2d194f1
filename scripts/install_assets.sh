#!/usr/bin/env bash
# Install the illustration assets aiprod draws with, from npm packages (MIT both):
#   @iconify-json/fluent-emoji-flat@1.2.6  Fluent Emoji Flat (© Microsoft, MIT): 3,174 flat
#                                          colour SVG illustrations in one icons.json, plus
#                                          chars.json (emoji code points -> icon name)
#   emojibase-data@17.0.0                  CLDR annotations and keywords per language (MIT,
#                                          © Miles Johnson; CLDR data © Unicode, Inc.)
# and, for the tests only (never served by aiprod):
#   axe-core@4.14.1                        the accessibility rules engine the browser test
#                                          injects into the ICC page (MPL-2.0, © Deque Systems)
# Each tarball is fetched with the ordinary npm client (`npm pack`), its sha256 checked against
# the pinned value, and the files aiprod reads are unpacked under the assets directory
# ($AIPROD_ASSETS_DIR, default ./assets). Every step is skipped when its output is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${AIPROD_ASSETS_DIR:-assets}"
mkdir -p "$dir/npm"

command -v npm >/dev/null || { echo "npm is needed to download the illustration set (apt-get install npm)" >&2; exit 1; }

# The languages aiprod accepts (config/v33.json inputSanitizer.languages).
langs=(en fr es de it pt ja zh ko)

# spec tarball sha256 target-subdir files...   (files are paths inside the tarball's package/)
fetch() {
  local spec="$1" tarball="$2" sha="$3" target="$4"
  shift 4
  local out="$dir/$target"
  local all_present=1
  for f in "$@"; do [ -s "$out/$f" ] || all_present=0; done
  if [ "$all_present" = 1 ]; then
    echo "assets: $target already installed"
    return
  fi
  if [ ! -s "$dir/npm/$tarball" ] || ! echo "$sha  $dir/npm/$tarball" | sha256sum -c --quiet - 2>/dev/null; then
    echo "assets: downloading $spec"
    rm -f "$dir/npm/$tarball"
    (cd "$dir/npm" && npm pack --silent "$spec" >/dev/null)
  fi
  echo "$sha  $dir/npm/$tarball" | sha256sum -c --quiet - || {
    echo "assets: sha256 mismatch for $tarball (expected $sha); refusing to install it" >&2
    exit 1
  }
  local tmp
  tmp="$(mktemp -d "$dir/.unpack.XXXXXX")"
  local members=()
  for f in "$@"; do members+=("package/$f"); done
  tar -xzf "$dir/npm/$tarball" -C "$tmp" "${members[@]}"
  mkdir -p "$out"
  for f in "$@"; do
    mkdir -p "$(dirname "$out/$f")"
    mv "$tmp/package/$f" "$out/$f"
  done
  rm -rf "$tmp"
  echo "assets: $target installed"
}

fetch @iconify-json/fluent-emoji-flat@1.2.6 iconify-json-fluent-emoji-flat-1.2.6.tgz \
  7d064769dee690815f823bc5bcc511d957198caf9f5edd8dd9c1aa48a6aeb175 \
  fluent-emoji-flat icons.json chars.json info.json package.json

emojibase_files=(LICENSE package.json)
for l in "${langs[@]}"; do emojibase_files+=("$l/data.json"); done
fetch emojibase-data@17.0.0 emojibase-data-17.0.0.tgz \
  d01d0e2ca4e22cb402679532155342c71e2e871f25c32223c013b8b166ebdf5a \
  emojibase-data "${emojibase_files[@]}"

fetch axe-core@4.14.1 axe-core-4.14.1.tgz \
  e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745 \
  axe-core axe.min.js LICENSE package.json
