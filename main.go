// Command crmdrop watches a shared folder laid out as <Module>/<record id>/ and attaches
// every file dropped there to that Zoho CRM record, exactly once.
package main

import (
	"os"

	"crmdrop/cli"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Env{
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Version: version,
	}))
}
