package watcher

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsnotify/fsnotify"
)

// BenchmarkScan measures a full scan of 10,000 files in 100 folders that
// have all been seen before: the steady state of a rescan.
func BenchmarkScan(b *testing.B) {
	root := b.TempDir()
	for d := range 100 {
		dir := filepath.Join(root, "Leads", fmt.Sprint(1000000000+d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("scan-%03d.pdf", f)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []string{"poll", "watch"} {
		b.Run(mode, func(b *testing.B) {
			w, err := New(Options{Root: root, Poll: mode == "poll"})
			if err != nil {
				b.Fatal(err)
			}
			if mode == "watch" {
				if w.fsw, err = fsnotify.NewWatcher(); err != nil {
					b.Fatal(err)
				}
				defer w.fsw.Close()
			}
			w.fullScan()
			if n := len(w.s.files); n != 10000 {
				b.Fatalf("tracked %d files, want 10000", n)
			}
			b.ReportAllocs()
			for b.Loop() {
				w.fullScan()
			}
		})
	}
}
