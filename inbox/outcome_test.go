package inbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMoveUniqueNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	want := filepath.Join(dir, "out", "report.pdf")
	var got []string
	for i := range 3 {
		src := filepath.Join(dir, "in.pdf")
		os.WriteFile(src, []byte{byte(i)}, 0o644)
		dst, err := MoveUnique(src, want)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, filepath.Base(dst))
	}
	// A reason file alone also blocks a name: it belongs to a file moved back by staff.
	os.WriteFile(filepath.Join(dir, "out", "report (4).pdf"+ErrorSuffix), nil, 0o644)
	src := filepath.Join(dir, "in.pdf")
	os.WriteFile(src, []byte("x"), 0o644)
	dst, err := MoveUnique(src, want)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, filepath.Base(dst))
	w := "report.pdf|report (2).pdf|report (3).pdf|report (5).pdf"
	if strings.Join(got, "|") != w {
		t.Errorf("names = %q, want %q", got, w)
	}
}

func TestNumbered(t *testing.T) {
	for _, tt := range []struct {
		p    string
		n    int
		want string
	}{
		{"a/report.pdf", 1, "a/report.pdf"},
		{"a/report.pdf", 2, "a/report (2).pdf"},
		{"a/archive.tar.gz", 3, "a/archive.tar (3).gz"},
		{"a/.env", 2, "a/.env (2)"},
		{"a/README", 2, "a/README (2)"},
	} {
		if got := numbered(filepath.FromSlash(tt.p), tt.n); got != filepath.FromSlash(tt.want) {
			t.Errorf("numbered(%q, %d) = %q, want %q", tt.p, tt.n, got, tt.want)
		}
	}
}

func TestReasonRoundTrip(t *testing.T) {
	dir := t.TempDir()
	failed := filepath.Join(dir, "a (2).pdf")
	rel := "Leads/1000000231009 Acme/scans/a.pdf"
	if err := WriteReason(failed, rel, Reason{What: "It broke.", Fix: "Do this."}, time.Unix(0, 0).UTC()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(failed + ErrorSuffix)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"It broke.", "Do this.", "What to do", "a (2).pdf"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("reason file lacks %q:\n%s", s, b)
		}
	}
	if got := ReasonOrigin(strings.NewReader(string(b))); got != rel {
		t.Errorf("ReasonOrigin = %q, want %q", got, rel)
	}
}

func TestReasonOriginRefusesEscapes(t *testing.T) {
	for _, v := range []string{"Leads/1/a.pdf", "a", "Leads/1/.hidden", "Leads/_x/a"} {
		if got := ReasonOrigin(strings.NewReader(whereLabel + "  " + v + "\n")); got != v {
			t.Errorf("ReasonOrigin(%q) = %q, want it back", v, got)
		}
	}
	for _, v := range []string{"", "/etc/passwd", "../x", "..", "Leads/../../a", "_failed/a", "_uploaded/Leads/1/a", ".git/x", "Leads//a", "Leads/1/", `C:\x`, "Leads\\1\\a", "a\x00b"} {
		if got := ReasonOrigin(strings.NewReader(whereLabel + "  " + v + "\n")); got != "" {
			t.Errorf("ReasonOrigin(%q) = %q, want \"\"", v, got)
		}
	}
}

func TestMoveUniqueConcurrentNeverLoses(t *testing.T) {
	dir := t.TempDir()
	want := filepath.Join(dir, "out", "a.pdf")
	os.MkdirAll(filepath.Dir(want), 0o755)
	os.WriteFile(want, []byte("already there"), 0o644)
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		src := filepath.Join(dir, fmt.Sprintf("src%d", i))
		os.WriteFile(src, []byte(fmt.Sprint(i)), 0o644)
		go func() { _, err := MoveUnique(src, want); errs <- err }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(want))
	if len(entries) != n+1 {
		t.Errorf("%d files in the destination, want %d: a move overwrote another", len(entries), n+1)
	}
}

func TestMoveUniqueFinishesInterruptedLink(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.pdf")
	want := filepath.Join(dir, "out", "a.pdf")
	os.WriteFile(src, []byte("x"), 0o644)
	os.MkdirAll(filepath.Dir(want), 0o755)
	if err := os.Link(src, want); err != nil {
		t.Skip("no hard links here:", err)
	}
	dst, err := MoveUnique(src, want)
	if err != nil || dst != want {
		t.Fatalf("MoveUnique = %q, %v; want %q", dst, err, want)
	}
	if _, err := os.Lstat(src); !errors.Is(err, fs.ErrNotExist) {
		t.Error("source still there")
	}
}
