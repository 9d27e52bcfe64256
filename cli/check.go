package cli

import "fmt"

func cmdCheck(env Env, args []string) int {
	fmt.Fprintln(env.Stderr, "crmdrop: check is not built yet")
	return exitFailure
}
