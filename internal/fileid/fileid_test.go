package fileid

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOfSurvivesRenameNotCopy(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.pdf")
	if err := os.WriteFile(a, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := statID(t, a)
	if id == "" {
		t.Fatal("Of = \"\" on a local file system, want an identity")
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "sub", "b.pdf")
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if got := statID(t, b); got != id {
		t.Errorf("Of after rename = %q, want %q", got, id)
	}
	c := filepath.Join(dir, "c.pdf")
	if err := os.WriteFile(c, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := statID(t, c); got == id {
		t.Errorf("Of of another file with the same content = %q, the same as the first", got)
	}
}

func statID(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return Of(p, fi)
}
