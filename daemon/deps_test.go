package daemon_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeafPackagesStayIndependent pins the architecture: the parts the daemon wires
// together never import each other (or the daemon), so each can be read, tested and
// replaced alone.
func TestLeafPackagesStayIndependent(t *testing.T) {
	leaves := []string{"crmdrop/watcher", "crmdrop/store", "crmdrop/uploader", "crmdrop/zoho", "crmdrop/inbox", "crmdrop/config", "crmdrop/admin"}
	for _, pkg := range leaves {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "crmdrop/") && dep != pkg && !strings.HasPrefix(dep, "crmdrop/internal/") {
				t.Errorf("%s imports %s; only daemon may know the other parts", pkg, dep)
			}
		}
	}
}

// TestBinaryDoesNotLinkTesting keeps test-only code out of the product: the fake Zoho
// serves `crmdrop demo`, so it must not need package testing.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "crmdrop").Output()
	if err != nil {
		t.Fatalf("go list -deps crmdrop: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" {
			t.Errorf("the crmdrop binary links package testing")
		}
	}
}
