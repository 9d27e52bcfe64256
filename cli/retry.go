package cli

import "fmt"

func cmdRetry(env Env, args []string) int {
	fmt.Fprintln(env.Stderr, "crmdrop: retry is not built yet")
	return exitFailure
}
