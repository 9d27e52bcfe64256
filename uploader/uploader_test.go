package uploader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// classErr is an error that says its own class, for driving the policy.
type classErr struct {
	c    Class
	hint time.Duration
}

func (e classErr) Error() string { return fmt.Sprintf("%v error", e.c) }

func testClassify(err error) (Class, time.Duration) {
	var ce classErr
	if errors.As(err, &ce) {
		return ce.c, ce.hint
	}
	return Transient, 0
}

// fakeRemote stores what it is sent and fails as scripted: each script entry is
// (store?, error) for one upload call.
type fakeRemote struct {
	mu      sync.Mutex
	script  []step
	stored  []Attachment
	sums    []string
	calls   int
	lists   int
	deleted []string
	// during is called while the body is being read, to change the file mid-upload.
	during func()
}

type step struct {
	store bool
	err   error
}

func (r *fakeRemote) next() step {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.script) == 0 {
		return step{store: true}
	}
	s := r.script[0]
	r.script = r.script[1:]
	return s
}

func (r *fakeRemote) UploadFile(ctx context.Context, dst Target, name string, size int64, open func() (io.ReadCloser, error)) (string, error) {
	s := r.next()
	body, err := open()
	if err != nil {
		return "", err
	}
	defer body.Close()
	h := sha256.New()
	buf := make([]byte, 3)
	var n int64
	for {
		k, err := body.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if n > 0 && r.during != nil {
			r.during()
			r.during = nil
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	if s.store {
		r.mu.Lock()
		id := fmt.Sprint(len(r.stored) + 1)
		r.stored = append(r.stored, Attachment{ID: id, Name: name, Size: n, Created: time.Now()})
		r.sums = append(r.sums, hex.EncodeToString(h.Sum(nil)))
		r.mu.Unlock()
		if s.err == nil {
			return id, nil
		}
	}
	return "", s.err
}

func (r *fakeRemote) UploadLink(ctx context.Context, dst Target, link, title string) (string, error) {
	s := r.next()
	if s.store {
		r.mu.Lock()
		id := fmt.Sprint(len(r.stored) + 1)
		r.stored = append(r.stored, Attachment{ID: id, Name: title, Link: link, Created: time.Now()})
		r.mu.Unlock()
		if s.err == nil {
			return id, nil
		}
	}
	return "", s.err
}

func (r *fakeRemote) Delete(ctx context.Context, dst Target, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, a := range r.stored {
		if a.ID == id {
			r.stored = append(r.stored[:i], r.stored[i+1:]...)
			r.deleted = append(r.deleted, id)
			return nil
		}
	}
	return errors.New("no such attachment")
}

func (r *fakeRemote) List(ctx context.Context, dst Target) ([]Attachment, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lists++
	return append([]Attachment(nil), r.stored...), nil
}

func newTestUploader(t *testing.T, r Remote, o Options) *Uploader {
	t.Helper()
	o.Remote = r
	o.Classify = testClassify
	o.InitialDelay = time.Millisecond
	o.MaxDelay = 5 * time.Millisecond
	if o.BlockedProbe == 0 {
		o.BlockedProbe = 5 * time.Millisecond
	}
	u, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func writeFile(t *testing.T, body string) Job {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.pdf")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return Job{ID: "k", Path: p, Name: "a.pdf", Dst: Target{"Leads", "1"}, Size: fi.Size(), ModTime: fi.ModTime()}
}

func TestUploadOutcomes(t *testing.T) {
	const body = "hello, crmdrop"
	sum := sha256.Sum256([]byte(body))
	want := hex.EncodeToString(sum[:])
	tests := []struct {
		name       string
		script     []step
		wantErr    bool
		wantStored int
		wantAdopt  bool
		wantCalls  int
	}{
		{"success", nil, false, 1, false, 1},
		{"transient then success", []step{{false, classErr{c: Transient}}, {false, classErr{c: Transient}}}, false, 1, false, 3},
		{"429 with hint then success", []step{{false, classErr{c: Transient, hint: time.Millisecond}}}, false, 1, false, 2},
		{"ambiguous and stored: adopted, not sent twice", []step{{true, classErr{c: Ambiguous}}}, false, 1, true, 1},
		{"ambiguous and not stored: sent again", []step{{false, classErr{c: Ambiguous}}}, false, 1, false, 2},
		{"permanent", []step{{false, classErr{c: Permanent}}}, true, 0, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := writeFile(t, body)
			r := &fakeRemote{script: tt.script}
			var begins int
			u := newTestUploader(t, r, Options{Begin: func(context.Context, Job, time.Time) error { begins++; return nil }})
			res, err := u.Upload(t.Context(), job)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Upload err = %v, wantErr %v", err, tt.wantErr)
			}
			var perm *PermanentError
			if tt.wantErr && !errors.As(err, &perm) {
				t.Errorf("Upload err = %T, want *PermanentError", err)
			}
			if len(r.stored) != tt.wantStored {
				t.Errorf("stored %d attachments, want %d", len(r.stored), tt.wantStored)
			}
			if r.calls != tt.wantCalls || begins != tt.wantCalls {
				t.Errorf("upload calls = %d, Begin calls = %d, want %d", r.calls, begins, tt.wantCalls)
			}
			if res.Adopted != tt.wantAdopt {
				t.Errorf("Adopted = %v, want %v", res.Adopted, tt.wantAdopt)
			}
			if !tt.wantErr && !tt.wantAdopt && res.SHA256 != want {
				t.Errorf("SHA256 = %q, want %q", res.SHA256, want)
			}
			if !tt.wantErr && res.AttachmentID != r.stored[0].ID {
				t.Errorf("AttachmentID = %q, want %q", res.AttachmentID, r.stored[0].ID)
			}
		})
	}
}

func TestUploadReconcilesCrashedAttempt(t *testing.T) {
	job := writeFile(t, "abc")
	r := &fakeRemote{stored: []Attachment{{ID: "77", Name: "a.pdf", Size: 3, Created: time.Now()}}}
	u := newTestUploader(t, r, Options{})
	job.Since = time.Now().Add(-time.Second)
	res, err := u.Upload(t.Context(), job)
	if err != nil || !res.Adopted || res.AttachmentID != "77" {
		t.Fatalf("Upload = %+v, %v; want adopted 77", res, err)
	}
	if r.calls != 0 {
		t.Errorf("uploaded %d times after finding it on the record, want 0", r.calls)
	}
}

func TestUploadDoesNotAdoptKnownAttachment(t *testing.T) {
	job := writeFile(t, "abc")
	r := &fakeRemote{stored: []Attachment{{ID: "77", Name: "a.pdf", Size: 3, Created: time.Now()}}}
	u := newTestUploader(t, r, Options{Claim: func(id string) bool { return id != "77" }})
	job.Since = time.Now().Add(-time.Second)
	res, err := u.Upload(t.Context(), job)
	if err != nil || res.Adopted || res.AttachmentID == "77" {
		t.Fatalf("Upload = %+v, %v; want a fresh upload", res, err)
	}
}

func TestUploadLinkExistsAfterAmbiguity(t *testing.T) {
	r := &fakeRemote{script: []step{{true, classErr{c: Ambiguous}}, {false, classErr{c: Permanent}}}}
	r.during = nil
	u := newTestUploader(t, r, Options{LinkExists: func(err error) bool { return true }})
	// The list shows the link, so the second attempt never happens: adopt at once.
	res, err := u.Upload(t.Context(), Job{ID: "k", Name: "site", Dst: Target{"Leads", "1"}, Link: "https://example.com/"})
	if err != nil || !res.Adopted || res.AttachmentID != "1" {
		t.Fatalf("Upload = %+v, %v; want adopted 1", res, err)
	}
	if len(r.stored) != 1 {
		t.Errorf("stored %d, want 1", len(r.stored))
	}
}

func TestUploadFileChangedMidway(t *testing.T) {
	job := writeFile(t, "0123456789")
	r := &fakeRemote{}
	r.during = func() {
		f, err := os.OpenFile(job.Path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		f.WriteString("more")
		f.Close()
	}
	u := newTestUploader(t, r, Options{})
	if _, err := u.Upload(t.Context(), job); !errors.Is(err, ErrChanged) {
		t.Fatalf("Upload err = %v, want ErrChanged", err)
	}
}

func TestUploadFileRewrittenInPlaceIsTakenBack(t *testing.T) {
	job := writeFile(t, "0123456789")
	r := &fakeRemote{}
	r.during = func() {
		// Same size, new content and mtime: only the re-stat after the upload sees it.
		f, err := os.OpenFile(job.Path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		f.WriteAt([]byte("X"), 9)
		f.Close()
		os.Chtimes(job.Path, time.Now(), job.ModTime.Add(time.Second))
	}
	u := newTestUploader(t, r, Options{})
	if _, err := u.Upload(t.Context(), job); !errors.Is(err, ErrChanged) {
		t.Fatalf("Upload err = %v, want ErrChanged", err)
	}
	if len(r.stored) != 0 || len(r.deleted) != 1 {
		t.Errorf("stored %d, deleted %d: the mixed upload must be taken back", len(r.stored), len(r.deleted))
	}
}

// stallingRemote reads a little of the body and then stops reading, like a server
// that hung mid-upload, until its context ends.
type stallingRemote struct{ fakeRemote }

func (r *stallingRemote) UploadFile(ctx context.Context, dst Target, name string, size int64, open func() (io.ReadCloser, error)) (string, error) {
	r.mu.Lock()
	r.calls++
	first := r.calls == 1
	r.mu.Unlock()
	if !first {
		return r.fakeRemote.UploadFile(ctx, dst, name, size, open)
	}
	body, err := open()
	if err != nil {
		return "", err
	}
	defer body.Close()
	body.Read(make([]byte, 2))
	<-ctx.Done()
	return "", ctx.Err()
}

func TestUploadStallIsCutAndRetried(t *testing.T) {
	job := writeFile(t, "0123456789")
	r := &stallingRemote{}
	var classes []Class
	u := newTestUploader(t, r, Options{StallTimeout: 50 * time.Millisecond, OnRetry: func(c Class, err error) { classes = append(classes, c) }})
	res, err := u.Upload(t.Context(), job)
	if err != nil || res.AttachmentID == "" {
		t.Fatalf("Upload = %+v, %v; want success after the stalled attempt", res, err)
	}
	if len(classes) != 1 {
		t.Errorf("retries = %v, want one after the stall", classes)
	}
}

func TestUploadFileGone(t *testing.T) {
	job := writeFile(t, "0123456789")
	os.Remove(job.Path)
	u := newTestUploader(t, &fakeRemote{}, Options{})
	if _, err := u.Upload(t.Context(), job); !errors.Is(err, ErrChanged) {
		t.Fatalf("Upload err = %v, want ErrChanged", err)
	}
}

func TestUploadSymlinkSwappedIn(t *testing.T) {
	job := writeFile(t, "0123456789")
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("0123456789"), 0o644)
	os.Remove(job.Path)
	if err := os.Symlink(secret, job.Path); err != nil {
		t.Skip("symlinks not available:", err)
	}
	r := &fakeRemote{}
	u := newTestUploader(t, r, Options{})
	if _, err := u.Upload(t.Context(), job); !errors.Is(err, ErrChanged) {
		t.Fatalf("Upload err = %v, want ErrChanged", err)
	}
	if len(r.stored) != 0 {
		t.Fatal("the symlink's target was uploaded")
	}
}

func TestGlobalErrorBlocksThenResumes(t *testing.T) {
	job := writeFile(t, "abc")
	r := &fakeRemote{script: []step{{false, classErr{c: Global}}, {false, classErr{c: Global}}}}
	var mu sync.Mutex
	var changes []string
	u := newTestUploader(t, r, Options{OnBlocked: func(s string) { mu.Lock(); changes = append(changes, s); mu.Unlock() }})
	res, err := u.Upload(t.Context(), job)
	if err != nil || res.AttachmentID == "" {
		t.Fatalf("Upload = %+v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || changes[0] == "" || changes[1] != "" {
		t.Errorf("blocked changes = %q, want [reason, \"\"]: one per episode", changes)
	}
	if u.Blocked() != "" {
		t.Errorf("still blocked: %q", u.Blocked())
	}
}

func TestUploadStopsOnCancel(t *testing.T) {
	job := writeFile(t, "abc")
	r := &fakeRemote{script: []step{{false, classErr{c: Global}}}}
	u := newTestUploader(t, r, Options{BlockedProbe: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { _, err := u.Upload(ctx, job); done <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for u.Blocked() == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Upload err = %v, want context.Canceled", err)
	}
}

func TestUploadRefusesParentFolderSwappedForLink(t *testing.T) {
	inboxDir := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "a.pdf"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(inboxDir, "rec")); err != nil {
		t.Skip("symlinks not available:", err)
	}
	fi, err := os.Stat(filepath.Join(outside, "a.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRemote{}
	u := newTestUploader(t, r, Options{})
	job := Job{ID: "k", Path: filepath.Join(inboxDir, "rec", "a.pdf"), Root: inboxDir, Rel: "rec/a.pdf",
		Name: "a.pdf", Dst: Target{"Leads", "1"}, Size: fi.Size(), ModTime: fi.ModTime()}
	_, err = u.Upload(t.Context(), job)
	if len(r.stored) != 0 {
		t.Fatal("a file outside the inbox was uploaded through a symlinked folder")
	}
	if err == nil {
		t.Fatal("Upload through a symlinked folder succeeded")
	}
}

func TestProbeThatAdoptsALinkOpensTheGate(t *testing.T) {
	r := &fakeRemote{script: []step{{true, classErr{c: Permanent}}}} // stored, then "already exists"
	u := newTestUploader(t, r, Options{LinkExists: func(error) bool { return true }})
	u.gate.block("NO_PERMISSION", 0) // this upload is the probe
	job := Job{ID: "k", Name: "site", Dst: Target{"Leads", "1"}, Link: "https://example.com/", Since: time.Now().Add(-time.Second)}
	res, err := u.Upload(t.Context(), job)
	if err != nil || !res.Adopted {
		t.Fatalf("Upload = %+v, %v; want adopted", res, err)
	}
	if b := u.Blocked(); b != "" {
		t.Fatalf("gate still closed (%q) after the probe succeeded: every other worker would wait forever", b)
	}
	if probe, err := u.gate.wait(t.Context()); probe || err != nil {
		t.Errorf("next wait = probe %v, %v; want an open gate", probe, err)
	}
}
