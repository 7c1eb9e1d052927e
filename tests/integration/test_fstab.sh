#!/usr/bin/env bash
# Issue 17: the /etc/fstab line the README documents works, as far as this
# machine (no systemd as PID 1, no udev) can show.
#
# The line is read from README.md (the one starting with "UUID=<fs-uuid>"),
# with the UUID of a volume's ext4 and a mount point under the test dir put
# in. systemd-fstab-generator, run on it, must make a mount unit ordered
# after shorthorn-fused.service (without requiring it), pulled in by
# remote-fs.target as a want (nofail), with the device timeout. `mount -a`
# on a file holding the line mounts the volume's ext4 (found by UUID);
# with the volume detached it exits 0 (nofail) and mounts nothing.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
GENERATOR=/lib/systemd/system-generators/systemd-fstab-generator
[[ -x $GENERATOR ]] || skip "no $GENERATOR (package systemd)"
line=$(grep -m1 -E '^ +UUID=<fs-uuid> ' "$REPO_DIR/README.md" | sed -E 's/^ +//')
[[ -n $line ]] || fail "README.md has no fstab line starting with UUID=<fs-uuid>"
log "README's line: $line"

start_cluster r1
vol=boot
mnt=$FS_DIR/$vol
create_volume "$vol" $((128 * MiB)) "$(replica_address r1)" >/dev/null
dev=$(attach_volume "$vol")
mkfs.ext4 -q -F "$dev"
uuid=$(blkid -s UUID -o value "$dev")
mkdir -p "$mnt"
fstab=$TEST_DIR/fstab
line=${line/<fs-uuid>/$uuid}
line=${line/\/srv\/db/$mnt}
echo "$line" >"$fstab"

# What systemd makes of it at boot.
out=$TEST_DIR/generated
mkdir -p "$out"
SYSTEMD_FSTAB=$fstab SYSTEMD_PROC_CMDLINE="" "$GENERATOR" "$out" "$out" "$out"
unit=$(systemd-escape --path "$mnt").mount
[[ -f $out/$unit ]] || fail "the generator made no $unit: $(find "$out" | head)"
grep -qx 'After=shorthorn-fused.service' "$out/$unit" || fail "$unit is not after shorthorn-fused: $(cat "$out/$unit")"
# Requires= would restart (unmount) the file system with every restart of fused.
! grep -q 'Requires=shorthorn-fused' "$out/$unit" || fail "$unit requires shorthorn-fused"
grep -qx "What=/dev/disk/by-uuid/$uuid" "$out/$unit" || fail "$unit does not mount by UUID"
[[ -L $out/remote-fs.target.wants/$unit ]] || fail "remote-fs.target does not want $unit (_netdev, nofail)"
[[ ! -e $out/remote-fs.target.requires/$unit && ! -e $out/local-fs.target.requires/$unit &&
   ! -e $out/local-fs.target.wants/$unit ]] || fail "$unit is required or part of local-fs.target"
grep -rqx 'JobRunningTimeoutSec=2min' "$out"/*.device.d/ || fail "no device timeout for the volume"
log "ok: systemd-fstab-generator: $unit after shorthorn-fused (not requiring it), wanted by remote-fs.target"

# What mount(8) makes of it. libblkid's own cache (no udev here) would
# remember the UUID on a loop device after the detach: a fresh one.
export BLKID_FILE=$TEST_DIR/blkid.tab
mount -a -T "$fstab"
assert_eq "$dev" "$(findmnt -n -o SOURCE "$mnt")" "device mounted from the fstab line"
echo hello >"$mnt/hello"
umount "$mnt"
detach_volume "$vol"
rm -f "$BLKID_FILE"
mount -a -T "$fstab" || fail "mount -a failed with the volume detached despite nofail"
! mountpoint -q "$mnt" || fail "$mnt is mounted although the volume is detached"
log "ok: mount -a mounts the volume by UUID, and with nofail passes while it is detached"
pass
