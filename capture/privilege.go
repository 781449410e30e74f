package capture

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// DropPrivileges switches the process to an unprivileged user once the
// capture socket is open: the socket keeps working, and the rest of the
// run (decoding bytes off the wire, writing files) does not happen as
// root. user names the account (a name or a numeric uid); "" means the
// user who ran sudo (SUDO_UID and SUDO_GID) when the process is root under
// sudo, and nothing otherwise. It sets the supplementary groups, then the
// group, then the user; Go applies each to every thread of the process.
// After it the process cannot regain root.
func DropPrivileges(name string) error {
	var uid, gid int
	var groups []int
	switch {
	case name == "":
		sudoUID, sudoGID := os.Getenv("SUDO_UID"), os.Getenv("SUDO_GID")
		if os.Geteuid() != 0 || sudoUID == "" || sudoGID == "" {
			return nil
		}
		var err1, err2 error
		uid, err1 = strconv.Atoi(sudoUID)
		gid, err2 = strconv.Atoi(sudoGID)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("capture: bad SUDO_UID/SUDO_GID %q/%q", sudoUID, sudoGID)
		}
		if uid == 0 {
			return nil // root ran sudo: there is nobody to switch to
		}
		groups = []int{gid}
		if u, err := user.LookupId(sudoUID); err == nil {
			groups = groupIDs(u, gid)
		}
	default:
		u, err := user.Lookup(name)
		if err != nil {
			if _, numErr := strconv.Atoi(name); numErr != nil {
				return fmt.Errorf("capture: cannot drop privileges: %w", err)
			}
			if u, err = user.LookupId(name); err != nil {
				return fmt.Errorf("capture: cannot drop privileges: %w", err)
			}
		}
		if uid, err = strconv.Atoi(u.Uid); err != nil {
			return fmt.Errorf("capture: user %s has uid %q", name, u.Uid)
		}
		if gid, err = strconv.Atoi(u.Gid); err != nil {
			return fmt.Errorf("capture: user %s has gid %q", name, u.Gid)
		}
		if os.Geteuid() != 0 && os.Geteuid() == uid {
			return nil // already that user
		}
		groups = groupIDs(u, gid)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("capture: cannot drop privileges to uid %d: setgroups: %w", uid, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("capture: cannot drop privileges to uid %d: setgid: %w", uid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("capture: cannot drop privileges to uid %d: setuid: %w", uid, err)
	}
	if os.Geteuid() != uid || os.Getegid() != gid {
		return fmt.Errorf("capture: dropping privileges left uid %d gid %d", os.Geteuid(), os.Getegid())
	}
	return nil
}

// groupIDs lists the user's groups, primary first; where they cannot be
// read, the primary group alone.
func groupIDs(u *user.User, gid int) []int {
	ids := []int{gid}
	names, err := u.GroupIds()
	if err != nil {
		return ids
	}
	for _, s := range names {
		if g, err := strconv.Atoi(s); err == nil && g != gid {
			ids = append(ids, g)
		}
	}
	return ids
}

// PermissionHint says how to get the privilege a live capture needs when
// err is the refusal to open the capture socket, and "" for other errors.
func PermissionHint(err error) string {
	if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EACCES) {
		return ""
	}
	return "live capture needs CAP_NET_RAW: run it with sudo, or grant the capability once with: sudo setcap cap_net_raw,cap_net_admin=eip $(command -v cqlsniff)"
}
