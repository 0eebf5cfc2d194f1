#!/usr/bin/env bash
# Compares our encoder loop (swscale RGB24→YUV420P, libx264, MP4 muxer, as used by the
# RenderExecutor) with the ffmpeg CLI encoding the very same raw frames with the same
# settings. Both are timed as whole processes (wall clock, and CPU time which is steadier
# on a shared machine), alternating which goes first, and the medians compared.
#
# Usage: scripts/encoder_vs_ffmpeg.sh [FRAMES] [WxH] [FPS] [PRESET] [CRF] [RUNS]
# Defaults: 250 frames, 1280x720, 25 fps, veryfast, crf 23, 3 runs each.
set -euo pipefail

FRAMES=${1:-250}
SIZE=${2:-1280x720}
FPS=${3:-25}
PRESET=${4:-veryfast}
CRF=${5:-23}
RUNS=${6:-3}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/examples/encode_raw
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

command -v ffmpeg >/dev/null || { echo "ffmpeg CLI not found" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) not found" >&2; exit 1; }

echo "building encode_raw (release)…"
(cd "$ROOT" && cargo build --quiet --release -p agents --example encode_raw)

echo "composing $FRAMES frames ${SIZE} with the compositor…"
"$BIN" dump "$FRAMES" "$WORK/frames.rgb" "$SIZE" "$FPS"
# Warm the page cache so neither side pays for the first read.
cat "$WORK/frames.rgb" >/dev/null

# Runs a command and prints "WALL CPU" seconds (CPU = user + system, all threads).
timed() {
  /usr/bin/time -o "$WORK/time" -f "%e %U %S" "$@" >/dev/null
  awk '{ printf "%s %.2f", $1, $2 + $3 }' "$WORK/time"
}
run_ffmpeg() {
  timed ffmpeg -v error -y -f rawvideo -pix_fmt rgb24 -s "$SIZE" -r "$FPS" -i "$WORK/frames.rgb" \
    -c:v libx264 -preset "$PRESET" -crf "$CRF" -pix_fmt yuv420p "$WORK/ffmpeg.mp4"
}
run_ours() {
  timed "$BIN" encode "$WORK/frames.rgb" "$SIZE" "$FPS" "$PRESET" "$CRF" "$WORK/ours.mp4"
}

ours=()
theirs=()
ours_cpu=()
theirs_cpu=()
for run in $(seq 1 "$RUNS"); do
  # Alternate which side goes first so neither always inherits the other's cache state.
  if (( run % 2 )); then a=$(run_ffmpeg); b=$(run_ours); else b=$(run_ours); a=$(run_ffmpeg); fi
  read -r a_wall a_cpu <<<"$a"
  read -r b_wall b_cpu <<<"$b"
  theirs+=("$(awk -v n="$FRAMES" -v w="$a_wall" 'BEGIN { printf "%.2f", n / w }')")
  ours+=("$(awk -v n="$FRAMES" -v w="$b_wall" 'BEGIN { printf "%.2f", n / w }')")
  theirs_cpu+=("$a_cpu")
  ours_cpu+=("$b_cpu")
  echo "run $run: ffmpeg ${theirs[-1]} fps (${a_cpu} s CPU), ours ${ours[-1]} fps (${b_cpu} s CPU), load $(cut -d' ' -f1 /proc/loadavg)"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m_theirs=$(median "${theirs[@]}")
m_ours=$(median "${ours[@]}")
c_theirs=$(median "${theirs_cpu[@]}")
c_ours=$(median "${ours_cpu[@]}")
echo "ffmpeg CLI : $m_theirs fps wall, $c_theirs s CPU (medians of $RUNS)"
echo "our encoder: $m_ours fps wall, $c_ours s CPU (medians of $RUNS)"
awk -v o="$m_ours" -v t="$m_theirs" 'BEGIN { printf "ratio ours/ffmpeg (wall fps): %.3f\n", o / t }'
awk -v o="$c_ours" -v t="$c_theirs" 'BEGIN { printf "ratio ours/ffmpeg (fps per CPU second): %.3f\n", t / o }'
