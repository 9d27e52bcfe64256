//go:build unix

package inbox

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A pipe named like a shortcut has no writer: a plain open would wait for one forever.
func TestFSReadURLFIFO(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "Leads/1"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(dir, "Leads/1/site.url"), 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	f := openFS(t, dir)
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"ReadURL", func() error { _, err := f.ReadURL("Leads/1/site.url"); return err }},
		{"Open", func() error {
			file, err := f.Open("Leads/1/site.url")
			if err == nil {
				file.Close()
			}
			return err
		}},
	} {
		done := make(chan error, 1)
		go func() { done <- op.do() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s of a FIFO succeeded, want it refused", op.name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s of a FIFO still blocked after 5s", op.name)
		}
	}
}

// The open itself must not block either: a FIFO swapped in after the check is opened
// with O_NONBLOCK and refused by the fstat that follows.
func TestOpenNonblockFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "p"), 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		file, err := r.OpenFile("p", os.O_RDONLY|openNonblock, 0)
		if err == nil {
			var fi os.FileInfo
			if fi, err = file.Stat(); err == nil {
				err = regularFile("p", fi.Mode())
			}
			file.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO passed as a regular file")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO with openNonblock still blocked after 5s")
	}
}
