package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

func cmdVersion(env Env, args []string) int {
	fmt.Fprintf(env.Stdout, "crmdrop %s (%s, %s/%s", env.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.time" || (s.Key == "vcs.modified" && s.Value == "true") {
				fmt.Fprintf(env.Stdout, ", %s=%s", s.Key, s.Value)
			}
		}
	}
	fmt.Fprintln(env.Stdout, ")")
	return exitOK
}
