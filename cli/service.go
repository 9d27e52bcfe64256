package cli

import "fmt"

func cmdService(env Env, args []string) int {
	fmt.Fprintln(env.Stderr, "crmdrop: service is not built yet")
	return exitFailure
}
