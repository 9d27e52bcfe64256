package uploader

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// discardRemote reads every body to its end, as a server would, and keeps nothing: the
// benchmark then measures the uploader's own path (open through os.Root, identity
// checks, SHA-256 of the bytes sent, re-stat).
type discardRemote struct{}

func (discardRemote) UploadFile(_ context.Context, _ Target, _ string, _ int64, open func() (io.ReadCloser, error)) (string, error) {
	rc, err := open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return "", err
	}
	return "3477061000000000001", nil
}

func (discardRemote) UploadLink(context.Context, Target, string, string) (string, error) {
	return "3477061000000000001", nil
}

func (discardRemote) List(context.Context, Target) ([]Attachment, error) { return nil, nil }

func (discardRemote) Delete(context.Context, Target, string) error { return nil }

// BenchmarkUpload is one successful upload of a scan-sized and of a large file.
func BenchmarkUpload(b *testing.B) {
	for _, size := range []int{32 << 10, 8 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			dir := b.TempDir()
			p := filepath.Join(dir, "scan.pdf")
			if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
				b.Fatal(err)
			}
			fi, err := os.Stat(p)
			if err != nil {
				b.Fatal(err)
			}
			u, err := New(Options{Remote: discardRemote{}, Classify: func(error) (Class, time.Duration) { return Permanent, 0 }})
			if err != nil {
				b.Fatal(err)
			}
			job := Job{ID: "k", Path: p, Root: dir, Rel: "scan.pdf", Name: "scan.pdf", Dst: Target{"Leads", "1"}, Size: fi.Size(), ModTime: fi.ModTime()}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				res, err := u.Upload(b.Context(), job)
				if err != nil || res.SHA256 == "" {
					b.Fatalf("Upload = %+v, %v; want a result with its hash", res, err)
				}
			}
		})
	}
}
