#!/usr/bin/env bash
# Makes examples/media/sample.webm, the demo server's built-in video: a
# 40-second test pattern (ffmpeg's testsrc2, 640x360, 30 fps, VP9) with a
# 440 Hz tone that beeps once a second (Opus), a keyframe every second so the
# player can seek anywhere, and the index (Cues) at the front so a browser can
# seek before the end of the file has arrived.
#
# The output is committed; run this only to change it (ffmpeg with libvpx-vp9
# and libopus, e.g. Debian's `ffmpeg` package). The encoder is deterministic
# for a given ffmpeg and libvpx, so the same versions give the same bytes.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-sample.webm}"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=30:duration=40" \
  -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=40" \
  -map 0:v -map 1:a \
  -c:v libvpx-vp9 -b:v 750k -minrate 500k -maxrate 1000k -g 30 -keyint_min 30 \
  -deadline good -cpu-used 4 -row-mt 1 -threads 2 \
  -c:a libopus -b:a 64k \
  -metadata title="chunkswarm sample: test pattern" \
  -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  -cues_to_front 1 \
  -f webm "$out"
ls -l "$out"
