#!/usr/bin/env bash
# Issue 16: the D-Bus policy file the packages ship
# (dbus/org.shorthorn.Storage1.conf), on a private bus that denies method
# calls by default as the system bus does. For every method of every
# interface in the introspection XML (so a new method cannot be forgotten),
# called as user nobody and as root with placeholder arguments:
#  * the bus never refuses it (org.freedesktop.DBus.Error.AccessDenied):
#    fused decides;
#  * as nobody, a method doc/dbus-api.md marks "needs admin" fails with
#    NotAuthorized, and the others do not;
#  * property reads (Get, GetAll), GetManagedObjects and Introspect work for
#    nobody on every object.
# Before the Job interface had a rule in the policy, Job.Cancel was refused
# by the bus to everyone, root included.
# Also issue 16: a volume administrator who is not root (nobody in group
# shorthorn) may name only the replicads fused.conf lists in CreateVolume
# and RestoreVolume (NotAuthorized naming the address, else fused would
# connect as root to any host:port); root may name any.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd python3 gdbus

# A bus configured like Debian's system bus: method calls denied unless a
# policy file allows them; the shipped policy file included.
conf=$TEST_DIR/system-like.conf
cat >"$conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>$REPO_DIR/dbus/org.shorthorn.Storage1.conf</include>
</busconfig>
CONF
start_bus "$conf"
start_replicad r1
start_fused

vol=policy-1
create_volume "$vol" $((64 * MiB)) "$(replica_address r1)" >/dev/null
vpath=$(volume_path "$vol")
job=$(volume_call "$vol" Verify 'a{sv}' 0 | _unquote)
wait_job "$job" 60 >/dev/null

# One line per method: "<interface> <method> <object> <admin yes|no> <args>"
# (gdbus argument texts for placeholder values of the method's signature,
# separated by "|"; "-" for none).
methods=$(python3 - "$REPO_DIR" "$vpath" "$job" "$MANAGER_PATH" <<'PY'
import re, sys, xml.etree.ElementTree as ET
repo, vpath, job, manager = sys.argv[1:5]
objects = {"Manager": manager, "Volume": vpath, "Job": job}
admin = {}
for line in open(f"{repo}/doc/dbus-api.md"):
    m = re.match(r"\| `(\w+)\(.*?\| (yes|no) \|", line)
    if m:
        admin[m.group(1)] = m.group(2)
def placeholder(sig):
    return {"s": "'no-such-thing'", "t": "0", "u": "1", "b": "false", "o": "'/'",
            "as": "@as []", "a{sv}": "@a{sv} {}"}[sig]
def split(sig):
    out, i = [], 0
    while i < len(sig):
        if sig.startswith("a{sv}", i): out.append("a{sv}"); i += 5
        elif sig.startswith("as", i): out.append("as"); i += 2
        else: out.append(sig[i]); i += 1
    return out
seen = 0
for short, path in objects.items():
    iface = f"org.shorthorn.Storage1.{short}"
    root = ET.parse(f"{repo}/dbus/{iface}.xml").getroot()
    for node in root.iter("interface"):
        if node.get("name") != iface: continue
        for m in node.iter("method"):
            name = m.get("name")
            sig = "".join(a.get("type") for a in m.iter("arg") if a.get("direction", "in") == "in")
            if name not in admin:
                sys.exit(f"method {iface}.{name} is not in doc/dbus-api.md's tables")
            args = "|".join(placeholder(t) for t in split(sig))
            print(iface, name, path, admin[name], args or "-")
            seen += 1
if seen < 15:
    sys.exit(f"only {seen} methods found in the XML")
PY
)
log "$(wc -l <<<"$methods") methods from the introspection XML"

call() {  # call [--as-nobody] OBJECT IFACE.METHOD ARGS...: sets DBUS_ERROR
  local nobody=()
  if [[ $1 == --as-nobody ]]; then nobody=(--as-nobody); shift; fi
  local object=$1 method=$2
  shift 2
  dbus_try "${nobody[@]}" "$object" "$method" "$@"
}
while read -r iface method object needs_admin args; do
  argv=()
  [[ $args == - ]] || IFS='|' read -r -a argv <<<"$args"
  set -- "${argv[@]}"
  call --as-nobody "$object" "$iface.$method" "$@"
  as_nobody=$DBUS_ERROR
  [[ $DBUS_ERROR != org.freedesktop.DBus.Error.AccessDenied ]] ||
    fail "the bus refuses $iface.$method to nobody: $DBUS_ERROR_MESSAGE"
  if [[ $needs_admin == yes ]]; then
    [[ $DBUS_ERROR == "${ERROR_PREFIX}NotAuthorized" ]] ||
      fail "$iface.$method as nobody: expected NotAuthorized, got $DBUS_ERROR: $DBUS_ERROR_MESSAGE"
  else
    [[ $DBUS_ERROR != "${ERROR_PREFIX}NotAuthorized" ]] ||
      fail "$iface.$method as nobody: NotAuthorized, but it needs no admin rights"
  fi
  call "$object" "$iface.$method" "$@"
  [[ $DBUS_ERROR != org.freedesktop.DBus.Error.AccessDenied && $DBUS_ERROR != "${ERROR_PREFIX}NotAuthorized" ]] ||
    fail "$iface.$method as root: $DBUS_ERROR: $DBUS_ERROR_MESSAGE"
  log "ok: $iface.$method: nobody -> ${as_nobody##*.}, root -> ${DBUS_ERROR##*.} (admin: $needs_admin)"
done <<<"$methods"

# Replicad addresses (issue 16). fused.conf lists only r1's address. The
# admin group must exist for a non-root admin; a group made here goes again.
shorthorn_gid=$(getent group shorthorn | cut -d: -f3 || true)
if [[ -z $shorthorn_gid ]]; then
  groupadd --system shorthorn
  teardown_hook() { groupdel shorthorn; }
  shorthorn_gid=$(getent group shorthorn | cut -d: -f3)
fi
admin_try() {  # admin_try OBJECT IFACE.METHOD ARGS...: dbus_try as nobody in group shorthorn
  local object=$1 method=$2 out rc=0
  shift 2
  out=$(setpriv --reuid=65534 --regid=65534 --groups="$shorthorn_gid" -- gdbus call --system \
    --dest "$BUS_NAME" --object-path "$object" --method "$method" "$@" 2>&1) || rc=$?
  DBUS_ERROR=UNPARSED DBUS_ERROR_MESSAGE=$out
  if ((rc == 0)); then
    DBUS_ERROR=OK
  elif [[ $out =~ GDBus\.Error:([A-Za-z0-9_.]+):\ ?(.*) ]]; then
    DBUS_ERROR=${BASH_REMATCH[1]} DBUS_ERROR_MESSAGE=${BASH_REMATCH[2]}
  fi
}
listed=$(replica_address r1)
unlisted=127.0.0.1:$(free_port) # nothing listens: root's call fails, but not NotAuthorized
for address in 10.9.9.9:1234 "$unlisted"; do
  refusal="replicad $address is not in fused.conf's replicads; only root may name other replicads"
  admin_try "$MANAGER_PATH" "$MANAGER_IFACE.CreateVolume" "'far'" "uint64 $((64 * MiB))" \
    "@as ['$listed', '$address']" "@a{sv} {}"
  assert_eq "${ERROR_PREFIX}NotAuthorized" "$DBUS_ERROR" "CreateVolume on $address as a non-root admin ($DBUS_ERROR_MESSAGE)"
  [[ $DBUS_ERROR_MESSAGE == *"CreateVolume: $refusal"* ]] ||
    fail "CreateVolume on $address as a non-root admin: unexpected message: $DBUS_ERROR_MESSAGE"
  admin_try "$MANAGER_PATH" "$MANAGER_IFACE.RestoreVolume" "'far'" \
    "'file:///nowhere?volume=v&backup=b'" "@as ['$address']" "@a{sv} {}"
  assert_eq "${ERROR_PREFIX}NotAuthorized" "$DBUS_ERROR" "RestoreVolume on $address as a non-root admin ($DBUS_ERROR_MESSAGE)"
  [[ $DBUS_ERROR_MESSAGE == *"RestoreVolume: $refusal"* ]] ||
    fail "RestoreVolume on $address as a non-root admin: unexpected message: $DBUS_ERROR_MESSAGE"
done
[[ $(list_volumes) != *far* ]] || fail "a refused CreateVolume left volume far"
log "ok: a non-root admin cannot name replicads outside fused.conf"
admin_try "$MANAGER_PATH" "$MANAGER_IFACE.CreateVolume" "'near'" "uint64 $((64 * MiB))" \
  "@as ['$listed']" "@a{sv} {}"
assert_eq OK "$DBUS_ERROR" "CreateVolume on the listed $listed as a non-root admin ($DBUS_ERROR_MESSAGE)"
delete_volume near
call "$MANAGER_PATH" "$MANAGER_IFACE.CreateVolume" "'far'" "uint64 $((64 * MiB))" \
  "@as ['$unlisted']" "@a{sv} {}"
[[ $DBUS_ERROR != "${ERROR_PREFIX}NotAuthorized" && $DBUS_ERROR != OK ]] ||
  fail "CreateVolume on $unlisted as root: expected the replicad's error, got $DBUS_ERROR: $DBUS_ERROR_MESSAGE"
log "ok: the listed replicad works for a non-root admin; root may name $unlisted (${DBUS_ERROR##*.})"

# Reads work for everyone on every object.
for object in /org/shorthorn/Storage1 "$vpath" "$job"; do
  call --as-nobody "$object" org.freedesktop.DBus.Introspectable.Introspect
  assert_eq OK "$DBUS_ERROR" "Introspect of $object as nobody ($DBUS_ERROR_MESSAGE)"
done
call --as-nobody /org/shorthorn/Storage1 org.freedesktop.DBus.ObjectManager.GetManagedObjects
assert_eq OK "$DBUS_ERROR" "GetManagedObjects as nobody ($DBUS_ERROR_MESSAGE)"
for pair in "$vpath org.shorthorn.Storage1.Volume" "$job org.shorthorn.Storage1.Job"; do
  read -r object iface <<<"$pair"
  call --as-nobody "$object" org.freedesktop.DBus.Properties.GetAll "$iface"
  assert_eq OK "$DBUS_ERROR" "GetAll $iface as nobody ($DBUS_ERROR_MESSAGE)"
done
log "ok: the shipped policy lets fused decide every call"
pass
