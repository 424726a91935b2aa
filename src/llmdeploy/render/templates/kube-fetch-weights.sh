#!/bin/sh
# llmdeploy: fill the weights volume with the model's files, once (POSIX sh + curl + sha256sum).
# LLMDEPLOY_FILES holds one line per file: PATH URL SHA256 (SHA256 "-": none given). A URL
# "hf:REPO/resolve/REV/PATH" is fetched from $HF_ENDPOINT (default https://huggingface.co) with
# $HF_TOKEN when set, and checked against the sha256 the Hub announces (X-Linked-Etag).
# Files land under temporary names and are renamed into place, so a pod never sees half a file
# and pods filling one shared volume at once cannot corrupt it; the marker is written last.
set -eu
dest="${LLMDEPLOY_DEST:?}"
marker="$dest/.llmdeploy-complete"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$LLMDEPLOY_MODEL_REF" ]; then
  echo "weights already in the volume: $LLMDEPLOY_MODEL_REF"
  exit 0
fi
mkdir -p "$dest"
me="$(hostname)"
printf '%s\n' "$LLMDEPLOY_FILES" | while read -r path url sha256; do
  [ -n "$path" ] || continue
  part="$dest/.$(echo "$path" | tr / _).$me.part"
  set -- --fail --location --silent --show-error --retry 10 --retry-delay 5 \
    --continue-at - --dump-header "$part.headers" --output "$part"
  case "$url" in
    hf:*)
      url="${HF_ENDPOINT:-https://huggingface.co}/${url#hf:}"
      if [ -n "${HF_TOKEN:-}" ]; then set -- "$@" --header "Authorization: Bearer $HF_TOKEN"; fi
      ;;
  esac
  echo "fetching $path"
  if ! curl "$@" "$url"; then
    # a partial file left by a killed attempt, on a server that cannot resume: start over
    echo "fetching $path again from the start"
    rm -f "$part"
    curl "$@" "$url"
  fi
  if [ "$sha256" = "-" ]; then
    sha256="$(tr -d '\r' < "$part.headers" \
      | sed -n 's/^[Xx]-[Ll]inked-[Ee][Tt]ag: *"\{0,1\}\([0-9a-f]\{64\}\)"\{0,1\}$/\1/p' | tail -n 1)"
  fi
  if [ -n "$sha256" ]; then
    got="$(sha256sum "$part" | cut -d ' ' -f 1)"
    if [ "$got" != "$sha256" ]; then
      echo "sha256 mismatch for $path: expected $sha256, got $got" >&2
      rm -f "$part" "$part.headers"
      exit 1
    fi
  else
    echo "note: $path is not verified (the reference gives no sha256)"
  fi
  mkdir -p "$(dirname "$dest/$path")"
  mv -f "$part" "$dest/$path"
  rm -f "$part.headers"
done
printf '%s' "$LLMDEPLOY_MODEL_REF" > "$marker.$me"
mv -f "$marker.$me" "$marker"
echo "weights ready: $LLMDEPLOY_MODEL_REF"
