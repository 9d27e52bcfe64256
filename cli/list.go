package cli

import "fmt"

func cmdList(env Env, args []string) int {
	fmt.Fprintln(env.Stderr, "crmdrop: list is not built yet")
	return exitFailure
}
