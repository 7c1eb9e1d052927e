# shellcheck shell=bash
# scripts/lib_volume_path.sh: volume_path, the one copy of how a volume's
# name becomes its D-Bus object path. Sourced by scripts/quickstart.sh and
# tests/integration/lib.sh (from the clone they sit in); defines nothing else.

# volume_path NAME: the object path of volume NAME (systemd's escaping:
# every byte but [A-Za-z0-9], and a leading digit, becomes _xx).
volume_path() {
  local name=$1 out="" c i
  [[ -n $name ]] || { echo "/org/shorthorn/Storage1/volumes/_"; return; }
  for ((i = 0; i < ${#name}; i++)); do
    c=${name:i:1}
    if [[ $c == [A-Za-z] || ($i -gt 0 && $c == [0-9]) ]]; then
      out+=$c
    else
      out+=$(printf '_%02x' "'$c")
    fi
  done
  echo "/org/shorthorn/Storage1/volumes/$out"
}
