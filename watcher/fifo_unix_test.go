//go:build unix

package watcher

import (
	"os"
	"syscall"
	"testing"
)

func TestSpecialFilesAreNeverOpened(t *testing.T) {
	h := run(t, Options{})
	if err := os.MkdirAll(h.path("Leads/1"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Opening a fifo for reading blocks until a writer comes: the watcher
	// would hang here and report nothing more.
	if err := syscall.Mkfifo(h.path("Leads/1/pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	h.write("Leads/1/a.pdf", "x")
	got := h.until("Leads/1/a.pdf")
	if len(got) != 1 {
		t.Fatalf("special file reported: %+v", got[:len(got)-1])
	}
	h.w.Rescan()
	h.expectNothing()
	if n := h.w.Tracked(); n != 2 { // a.pdf and the barrier
		t.Fatalf("Tracked() = %d, want 2: the fifo must not be tracked", n)
	}
}
