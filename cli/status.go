package cli

import "fmt"

func cmdStatus(env Env, args []string) int {
	fmt.Fprintln(env.Stderr, "crmdrop: status is not built yet")
	return exitFailure
}
