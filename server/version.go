package server

import (
	"net/http"
	"runtime"
	"runtime/debug"
)

// modulePath is the gaas module's path, to find it among a binary's
// dependencies when gaas is a library of another program.
const modulePath = "github.com/gaas-io/gaas"

// Version is the build of the gaas module that serves, as GET /version
// answers it and "gaasd version" prints it.
type Version struct {
	// Version is the module's version: a tag, a pseudo-version, or
	// "(devel)" for a build inside the module's own tree.
	Version string `json:"version"`
	// Commit, Date and Modified are what the go command records of the
	// version control checkout it built from (vcs.revision, vcs.time and
	// vcs.modified): empty, and false, when it built from elsewhere (a
	// module download, or -buildvcs=false). Go records no build time, so
	// Date is the commit's.
	Commit   string `json:"commit,omitempty"`
	Date     string `json:"date,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// BuildVersion reads the running binary's build information
// (debug.ReadBuildInfo) for the gaas module's version.
func BuildVersion() Version {
	v := Version{Version: "unknown", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	switch {
	case info.Main.Path == modulePath:
		v.Version = info.Main.Version
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Date = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	default:
		for _, d := range info.Deps {
			if d.Path == modulePath {
				v.Version = d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					v.Version = d.Replace.Version
				}
			}
		}
	}
	return v
}

func handleVersion(v Version) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, v)
	})
}
