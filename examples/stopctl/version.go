package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionText is what --version prints: stopctl's module version (set by
// go install ...@version; "(devel)" in a clone), the VCS revision when
// the build recorded one, and the Go release it was built with.
func versionText() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "stopctl (unknown version) " + runtime.Version()
	}
	return formatVersion(info)
}

func formatVersion(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	s := "stopctl " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += fmt.Sprintf(" (%s%s)", rev, modified)
	}
	return s + " " + info.GoVersion
}
