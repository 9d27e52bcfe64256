package cli

import "fmt"

func cmdAuth(env Env, args []string) int {
	fmt.Fprintln(env.Stderr, "crmdrop: auth is not built yet")
	return exitFailure
}
