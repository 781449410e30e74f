package main

import (
	"runtime/debug"
	"strings"
)

// version says which build this is, from what the Go toolchain stamped into
// the binary: the module version (a tag for `go install ...@v1.2.3`,
// "(devel)" for a build in a checkout) and the VCS commit, its time and
// whether the tree had uncommitted changes.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "cqlsniff (no build information)"
	}
	var b strings.Builder
	b.WriteString("cqlsniff ")
	b.WriteString(bi.Main.Version)
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		b.WriteString(" (commit " + rev[:min(12, len(rev))])
		if at != "" {
			b.WriteString(" " + at)
		}
		b.WriteString(dirty + ")")
	}
	b.WriteString(" " + bi.GoVersion)
	return b.String()
}
